"""segkit.data.normalize: the one normalisation, in numpy and in torch, and the authors' bit for bit."""
import numpy as np
import pytest
import torch

from segkit.data.normalize import image_to_tensor, normalize, scale_offset
from segkit.errors import UserError


def test_normalize_modes():
    image = np.array([[[0, 127, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(normalize(image, "tf"), [[[-1, -0.00392, 1]]], atol=1e-4)
    net = normalize(image, "imagenet")
    np.testing.assert_allclose(net[0, 0, 0], (0 - 123.675) / 58.395, rtol=1e-5)
    tensor = image_to_tensor(np.zeros((4, 5, 3), np.uint8), "tf")
    assert tuple(tensor.shape) == (3, 4, 5) and str(tensor.dtype) == "torch.float32"
    with pytest.raises(UserError, match="data.normalize"):
        normalize(image, "caffe")


@pytest.mark.parametrize("mode", ["tf", "imagenet"])
def test_image_to_tensor_equals_numpy_normalize(mode):
    # computed in torch in place, it must give exactly the float32 values of the numpy definition; a flipped
    # (negative-stride) view, as augmentations may return, must work too
    image = np.random.default_rng(0).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    for view in (image, image[:, ::-1]):
        expected = torch.from_numpy(normalize(view, mode).transpose(2, 0, 1).copy())
        assert torch.equal(image_to_tensor(view, mode), expected)


def test_tf_normalisation_is_the_authors_bit_for_bit():
    # deeplab: (2.0 / 255.0) * x - 1.0 in float32; the pad value 127.5 maps to exactly 0
    image = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    expected = image.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)
    assert np.array_equal(normalize(image, "tf"), expected)
    assert np.float32(127.5) * scale_offset("tf")[0][0] - scale_offset("tf")[1][0] == 0.0
