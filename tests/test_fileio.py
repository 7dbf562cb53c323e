"""segkit.fileio: atomic writes (no half-written file, ever) and the one PNG writer."""
import cv2
import numpy as np
import pytest

from segkit.errors import UserError
from segkit.fileio import atomic_open, atomic_write_bytes, write_png


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "eval.json"
    atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError):
        with atomic_open(path, "wb") as f:
            f.write(b"half of the new")
            raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["eval.json"]
    atomic_write_bytes(tmp_path / "sub" / "new.bin", b"new")  # folders are made
    assert (tmp_path / "sub" / "new.bin").read_bytes() == b"new"


def test_png_round_trip_rgb_and_single_channel(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    labels = np.arange(35, dtype=np.uint8).reshape(5, 7)
    write_png(tmp_path / "colour.png", rgb)
    write_png(tmp_path / "a" / "labels.png", labels)
    assert np.array_equal(cv2.imread(str(tmp_path / "colour.png"))[:, :, ::-1], rgb)  # RGB in, RGB on disk
    assert np.array_equal(cv2.imread(str(tmp_path / "a" / "labels.png"), cv2.IMREAD_UNCHANGED), labels)


def test_unwritable_folder_is_one_sentence(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot write .*file/out.png"):
        write_png(tmp_path / "file" / "out.png", np.zeros((2, 2), np.uint8))
