"""segkit.deploy.photos: inputs expanded in order and each file once, photos upright, output names that never
collide, the three outputs of a photo."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from segkit.data.labels import to_label_ids
from segkit.deploy.photos import expand_inputs, load_photo, output_names, write_outputs
from segkit.errors import UserError


def test_inputs_are_expanded_in_order_each_file_once(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.jpg", "sub/c.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    paths, errors = expand_inputs([str(tmp_path / "b.png"), str(tmp_path), str(tmp_path / "*.jpg"),
                                   str(tmp_path / "empty"), str(tmp_path / "none*.png"), str(tmp_path / "gone.png")])
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["b.png", "a.jpg", "sub/c.png", "gone.png"]
    assert len(errors) == 2 and "folder holds no images" in errors[0] and "no file matches" in errors[1]
    with pytest.raises(UserError, match="gone.png: file does not exist"):
        load_photo(tmp_path / "gone.png")


def test_a_text_file_lists_photos_relative_to_its_folder(tmp_path, monkeypatch):
    (tmp_path / "frames" / "day").mkdir(parents=True)
    for name in ("a.png", "day/b.png"):
        cv2.imwrite(str(tmp_path / "frames" / name), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "c.png"), np.zeros((8, 8, 3), np.uint8))
    lines = ["# frames of one drive", "a.png", "", "  day/b.png  ", str(tmp_path / "c.png"), "gone.png", "a.png"]
    (tmp_path / "frames" / "list.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "empty.txt").write_text("# nothing yet\n")
    monkeypatch.chdir(tmp_path / "frames" / "day")  # the list's folder, not the working one, anchors its paths
    paths, errors = expand_inputs([str(tmp_path / "frames" / "list.txt"), str(tmp_path / "empty.txt")])
    assert paths == [tmp_path / "frames" / "a.png", tmp_path / "frames" / "day" / "b.png", tmp_path / "c.png",
                     tmp_path / "frames" / "gone.png"]  # each file once; a missing one is reported when read
    assert errors == [f"{tmp_path / 'empty.txt'}: the list names no files (one path per line)"]


def test_output_names_of_a_long_list():
    # comparing each name with all the others (10^10 comparisons here) did not finish in hours; no clock is read:
    # a quadratic version hangs this test instead of passing it
    paths = [Path(f"drive_{i // 1000}/frame_{i % 1000:04d}.png") for i in range(100_000)]  # stems repeat per drive
    names = output_names(paths)
    assert len(set(names)) == len(paths) and names[1000] == "drive_1/frame_0000"


def test_output_names_never_collide():
    names = output_names
    # a.png and a.jpg once both became "a" / "a_1", and a_1.png then overwrote one of them
    assert names([Path("a.png"), Path("a.jpg"), Path("a_1.png")]) == ["a_png", "a_jpg", "a_1"]
    assert names([Path("day/a.png"), Path("night/a.png"), Path("b.png")]) == ["day/a", "night/a", "b"]
    assert names([Path("x/a.png"), Path("y/a.png"), Path("x/a.jpg"), Path("y/a.jpg")]) == [
        "x/a_png", "y/a_png", "x/a_jpg", "y/a_jpg"]
    # a stem that equals another input's extended name: still all different
    assert len(set(names([Path("a.png"), Path("a_png.jpg"), Path("a.jpg"), Path("b/a.png")]))) == 4


def test_exif_orientation_turns_phone_photos_upright(tmp_path):
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:20, :30] = (250, 0, 0)  # a red top-left quadrant tells every turn and mirror apart
    pixels[:20, 30:] = (0, 250, 0)
    for orientation in range(1, 9):
        path = tmp_path / f"o{orientation}.jpg"
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(pixels).save(path, exif=exif, quality=95)
        expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB")).astype(int)
        got = load_photo(path).astype(int)
        assert got.shape == expected.shape and np.abs(got - expected).mean() < 3, orientation


def test_a_photo_gives_colour_overlay_and_label_ids(tmp_path):
    image = np.full((16, 24, 3), 200, np.uint8)
    labels = np.zeros((16, 24), np.uint8)
    labels[8:] = 13  # car
    written = write_outputs(tmp_path / "out", "day/a", image, labels)
    assert [p.name for p in written] == ["a_color.png", "a_overlay.png", "a_labelIds.png"]
    assert np.array_equal(cv2.imread(str(written[2]), cv2.IMREAD_UNCHANGED), to_label_ids(labels))
    assert cv2.imread(str(written[0])).shape == (16, 24, 3)
