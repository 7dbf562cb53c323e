"""segkit.data.images: one rule for photos on every path -- upright by EXIF, RGB uint8, from a file or from bytes --
and their upright size from the header alone."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from segkit.data.images import decode_image, image_size, read_image
from segkit.errors import UserError


def phone_photo(path=None, orientation=6):
    """A 40x60 photo stored landscape with an EXIF turn (6: shown turned a quarter clockwise); its bytes."""
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:20, :30] = (250, 0, 0)  # a red top-left quadrant tells every turn apart
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", exif=exif, quality=95)
    if path is not None:
        path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_a_file_and_its_bytes_read_the_same_upright_photo(tmp_path):
    data = phone_photo(tmp_path / "phone.jpg")
    from_file, from_bytes = read_image(tmp_path / "phone.jpg"), decode_image(data, "phone.jpg")
    assert from_file.shape == (60, 40, 3) and np.array_equal(from_file, from_bytes)
    assert image_size(tmp_path / "phone.jpg") == (60, 40)  # from the header, turned as the photo is
    assert from_file[:20, -20:].mean(axis=(0, 1))[0] > 200  # the red corner is now top-right


def test_gray_and_alpha_become_rgb_and_16_bits_are_refused(tmp_path):
    gray = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 256
    rgba = np.dstack([np.zeros((64, 64, 3), np.uint8), np.full((64, 64), 7, np.uint8)])
    for name, image in (("gray.png", gray.astype(np.uint8)), ("rgba.png", rgba)):
        cv2.imwrite(str(tmp_path / name), image)
        assert read_image(tmp_path / name).shape == (64, 64, 3)
        assert np.array_equal(decode_image((tmp_path / name).read_bytes()), read_image(tmp_path / name))
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), gray * 257)
    for call in (lambda: read_image(deep), lambda: decode_image(deep.read_bytes())):
        with pytest.raises(UserError, match="16 bits"):
            call()


def test_bytes_that_are_no_photo_or_too_many_pixels_are_one_sentence():
    for data, words in ((b"", "empty"), (b"not an image at all", "cannot decode")):
        with pytest.raises(UserError, match=words):
            decode_image(data, "the upload")
    with pytest.raises(UserError, match="more than the 100 allowed"):
        decode_image(phone_photo(), "the upload", max_pixels=100)  # from the header: nothing decoded
