import cv2
import numpy as np

from segkit.config import DataConfig
from segkit.data.labels import PALETTE
from segkit.data.normalize import image_to_tensor
from segkit.data.transforms import train_transform


def _scales(transform, runs=300):
    """Scale factors actually applied, measured from the area of a 32x32 square (padding keeps it whole)."""
    mask = np.full((64, 64), 2, dtype=np.uint8)
    mask[16:48, 16:48] = 1
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    return np.array([np.sqrt((transform(image=image, mask=mask)["mask"] == 1).sum()) / 32 for _ in range(runs)])


def test_random_scale_covers_config_range():
    scales = _scales(train_transform(DataConfig(crop_size=(256, 256)), jitter=False, seed=0))
    assert scales.min() < 0.56 and scales.max() > 1.9
    assert scales.min() > 0.45 and scales.max() < 2.05
    assert np.mean(np.abs(scales - 1) < 0.02) < 0.1  # always applied (albumentations' default is p=0.5)


def test_random_scale_follows_config():
    scales = _scales(train_transform(DataConfig(crop_size=(256, 256), scale_range=(0.75, 1.25)), seed=1), 100)
    assert scales.min() > 0.7 and scales.max() < 1.3


def test_padding_is_ignore_not_road():
    config = DataConfig(crop_size=(96, 160), scale_range=(0.5, 1.0))
    image = np.full((40, 80, 3), 200, dtype=np.uint8)
    mask = np.zeros((40, 80), dtype=np.uint8)  # all road
    out = train_transform(config, jitter=False, seed=0)(image=image, mask=mask)
    assert out["image"].shape == (96, 160, 3) and out["mask"].shape == (96, 160)
    assert set(np.unique(out["mask"])) == {0, 255}
    padded = out["mask"] == 255
    assert padded.mean() > 0.5
    # the image is padded with the normalisation mean, so padding is 0 at the network's input
    np.testing.assert_allclose(image_to_tensor(out["image"], "tf").numpy()[:, padded], 0, atol=0.01)
    out = train_transform(DataConfig(crop_size=(96, 160), normalize="imagenet"), jitter=False, seed=0)(
        image=image, mask=mask)
    np.testing.assert_allclose(image_to_tensor(out["image"], "imagenet").numpy()[:, out["mask"] == 255], 0, atol=0.02)


def test_image_and_mask_stay_aligned():
    rng = np.random.default_rng(0)
    mask = np.zeros((128, 256), dtype=np.uint8)
    for _ in range(40):
        y, x = rng.integers(0, 120), rng.integers(0, 240)
        mask[y:y + rng.integers(8, 40), x:x + rng.integers(8, 60)] = rng.integers(0, 19)
    mask[:, :128] = np.where(np.arange(128)[None, :] < 64, mask[:, :128], 5)  # left/right asymmetry: catches flips
    image = PALETTE[mask]  # the colour says the class
    transform = train_transform(DataConfig(crop_size=(96, 160)), jitter=False, seed=0)
    kernel = np.ones((5, 5), np.uint8)
    for _ in range(30):
        out = transform(image=image, mask=mask)
        img, msk = out["image"], out["mask"]
        # away from class borders (bilinear image vs nearest mask), colours must equal the mask's class colour
        inner = (cv2.erode(msk, kernel) == cv2.dilate(msk, kernel)) & (msk != 255)
        assert inner.sum() > 100
        diff = np.abs(img[inner].astype(int) - PALETTE[msk[inner]].astype(int)).max(1)
        assert np.mean(diff <= 3) > 0.99


def test_jitter_changes_colours_only():
    image = np.full((64, 64, 3), 100, dtype=np.uint8)
    mask = np.ones((64, 64), dtype=np.uint8)
    transform = train_transform(DataConfig(crop_size=(64, 64), scale_range=(1.0, 1.0)), seed=0)
    outs = [transform(image=image, mask=mask) for _ in range(10)]
    assert len({int(o["image"][32, 32].sum()) for o in outs}) > 1
    assert all((o["mask"] == 1).all() for o in outs)


def test_small_scaled_images_are_padded_bottom_right_with_ignore():
    # as deeplab pads (and as predictions pad to the pixel grid): the image keeps its top-left corner
    image = np.full((40, 50, 3), 200, dtype=np.uint8)
    mask = np.ones((40, 50), dtype=np.uint8)
    transform = train_transform(DataConfig(crop_size=(65, 81), scale_range=(1.0, 1.0)), jitter=False, seed=0)
    for _ in range(5):
        out = transform(image=image, mask=mask)
        img, msk = out["image"], out["mask"]
        flipped = msk[0, 0] == 255  # the horizontal flip moves the image to the right edge
        cols = slice(81 - 50, 81) if flipped else slice(0, 50)
        assert (msk[:40, cols] == 1).all() and (img[:40, cols] == 200).all()
        assert (msk[40:] == 255).all() and (msk == 255).sum() == 65 * 81 - 40 * 50
        assert (img[40:] == 127).all() or (img[40:] == 128).all()  # the mean pixel 127.5, rounded
