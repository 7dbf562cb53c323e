"""segkit.models.tf_checkpoint: the authors' reference checkpoints, every source form, hand-written bundles of
every tensor kind, and each refusal."""
import io
import json
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest

from segkit.errors import UserError
from segkit.models import tf_checkpoint as tfc
from segkit.models.tf_checkpoint import read_tf_checkpoint

VARIANTS = ["lraspp_large_os16", "lraspp_large_os32", "lraspp_small_os16", "lraspp_small_os32", "raspp_large_os16_f256"]


def shapes(checkpoint):
    return {name: array.shape for name, array in checkpoint.tensors.items()}


def tiny(bundle, prefix, value=1.5):
    return bundle.write(prefix, {"w": (1, [2], np.array([value, -value], "<f4").tobytes())})


def test_crc32c_matches_the_standard_check_values():
    checks = {b"123456789": 0xE3069283, b"": 0, b"a": 0xC1D04330, bytes(32): 0x8A9136AA}
    assert {data: tfc.crc32c(data) for data in checks} == checks
    assert tfc.crc32c(memoryview(b"..123456789")[2:]) == 0xE3069283  # slices of a file, as the reader passes them


@pytest.mark.tf_reference
@pytest.mark.parametrize("variant", VARIANTS)
def test_reference_checkpoints_match_their_variable_lists(variant, reference):
    checkpoint = read_tf_checkpoint(reference / variant / "model.ckpt")
    variables = json.loads((reference / variant / "variables.json").read_text())
    assert shapes(checkpoint) == {v["name"]: tuple(v["shape"]) for v in variables}
    assert list(checkpoint.tensors) == sorted(checkpoint.tensors)
    assert all(array.dtype == np.float32 and np.isfinite(array).all() for array in checkpoint.tensors.values())
    trainable = sum(math.prod(checkpoint.tensors[v["name"]].shape) for v in variables if v["trainable"])
    assert trainable == json.loads((reference / variant / "meta.json").read_text())["params"]["trainable_total"]
    variances = [a for name, a in checkpoint.tensors.items() if name.endswith("moving_variance")]
    assert variances and all((a > 0).all() for a in variances)


@pytest.mark.tf_reference
def test_every_source_form_gives_the_same_tensors(tmp_path, reference):
    folder = reference / "lraspp_small_os16"
    expected = read_tf_checkpoint(folder / "model.ckpt")
    archive = tmp_path / "deeplab.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / "model.ckpt.index", "deeplab_small/model.ckpt.index")
        tar.add(folder / "model.ckpt.data-00000-of-00001", "deeplab_small/model.ckpt.data-00000-of-00001")
        info = tarfile.TarInfo("deeplab_small/frozen_inference_graph.pb")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"graph"))
    sources = [str(folder / "model.ckpt.index"), folder / "model.ckpt.data-00000-of-00001", folder, archive]
    for source in sources:
        checkpoint = read_tf_checkpoint(source)
        assert list(checkpoint.tensors) == list(expected.tensors)
        assert all(np.array_equal(checkpoint.tensors[k], v) for k, v in expected.tensors.items())
    assert read_tf_checkpoint(folder).prefix == str(folder / "model.ckpt")
    assert read_tf_checkpoint(archive).prefix == f"{archive}:deeplab_small/model.ckpt"


@pytest.mark.tf_reference
def test_ema_copy_is_preferred_over_pristine(tmp_path, reference, copy_reference):
    root = tmp_path / "v3-large_224_1.0_float"
    copy_reference("lraspp_small_os32", root / "ema", "model.ckpt-400000")
    copy_reference("lraspp_large_os32", root / "pristine", "model.ckpt-540000")
    small = shapes(read_tf_checkpoint(reference / "lraspp_small_os32" / "model.ckpt"))
    checkpoint = read_tf_checkpoint(tmp_path)
    assert checkpoint.prefix == str(root / "ema" / "model.ckpt-400000") and shapes(checkpoint) == small
    archive = tmp_path / "slim.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, "v3-large_224_1.0_float")
    assert read_tf_checkpoint(archive).prefix == f"{archive}:v3-large_224_1.0_float/ema/model.ckpt-400000"


def test_choice_follows_the_state_file_then_the_highest_step(tmp_path, tf_bundle):
    tiny(tf_bundle, tmp_path / "model.ckpt-900", 9.0)
    tiny(tf_bundle, tmp_path / "model.ckpt-1000", 10.0)
    assert read_tf_checkpoint(tmp_path).tensors["w"][0] == 10.0
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/train/run1/model.ckpt-900"\n'
                                         'all_model_checkpoint_paths: "/train/run1/model.ckpt-1000"\n')
    assert read_tf_checkpoint(tmp_path).tensors["w"][0] == 9.0


def test_hand_built_bundle_decodes_every_kind_of_tensor(tmp_path, tf_bundle):
    strings = [b"MobilenetV3", b"", b"\xff\x00bytes"]
    raw, covered = tf_bundle.string_tensor(strings)
    bf16 = (np.array([1.0, -2.5, 3.140625], "<f4").view("<u4") >> 16).astype("<u2")
    prefix = tf_bundle.write(tmp_path / "model.ckpt", {
        "global_step": (9, [], np.array(540000, "<i8").tobytes()),
        "names": (7, [3, 1], raw, covered),
        "mask": (10, [3], bytes([1, 0, 1])),
        "bf16": (14, [3], bf16.tobytes()),
        "half": (19, [2, 2], np.arange(4, dtype="<f2").tobytes()),
        "pixels": (4, [0, 4], b""),
    })
    tensors = read_tf_checkpoint(prefix).tensors
    assert list(tensors) == ["bf16", "global_step", "half", "mask", "names", "pixels"]
    step = tensors["global_step"]
    assert step.dtype == np.int64 and step.shape == () and step == 540000
    assert tensors["names"].shape == (3, 1) and tensors["names"].ravel().tolist() == strings
    assert tensors["mask"].tolist() == [True, False, True]
    assert tensors["bf16"].dtype == np.float32 and tensors["bf16"].tolist() == [1.0, -2.5, 3.140625]
    assert tensors["half"].dtype == np.float16 and tensors["half"].tolist() == [[0, 1], [2, 3]]
    assert tensors["pixels"].shape == (0, 4) and tensors["pixels"].dtype == np.uint8
    tensors["half"][0, 0] = 7  # arrays are writable copies, safe for torch.from_numpy


def test_bundle_refusals(tmp_path, tf_bundle):
    write, field = tf_bundle.write, tf_bundle.field
    cases = [
        (write(tmp_path / "sliced", {"conv/weights": (1, [1], bytes(4))}, field(7, b"")), "partitioned slices"),
        (write(tmp_path / "resource", {"handle": (20, [1], bytes(4))}), "dtype enum 20"),
        (write(tmp_path / "size", {"w": (1, [3], bytes(8))}), "needs 12"),
        (write(tmp_path / "unknown_dim", {"w": (1, [2**64 - 1], b"")}), "no fully defined shape"),
    ]
    for prefix, words in cases:
        with pytest.raises(UserError, match=words) as info:
            read_tf_checkpoint(prefix)
        assert str(prefix) in str(info.value)
    prefix = tiny(tf_bundle, tmp_path / "flipped")
    data = prefix.with_name("flipped.data-00000-of-00001")
    data.write_bytes(b"\x01" + data.read_bytes()[1:])
    with pytest.raises(UserError, match="checksum") as info:
        read_tf_checkpoint(prefix)
    assert str(data) in str(info.value)


def test_bad_sources_raise_one_clear_user_error(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "random.bin").write_bytes(rng.bytes(3000))
    (tmp_path / "random.index").write_bytes(rng.bytes(3000))
    (tmp_path / "photo.index").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(500))
    (tmp_path / "model.pt").write_bytes(b"PK\x03\x04" + rng.bytes(500))  # what torch.save writes: a zip
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.tar.gz").write_bytes(b"\x1f\x8b" + rng.bytes(200))
    with tarfile.open(tmp_path / "no_ckpt.tar", "w") as tar:
        info = tarfile.TarInfo("readme.txt")
        tar.addfile(info, io.BytesIO(b""))
    cases = [("missing/model.ckpt", "does not exist"), ("random.bin", "not a TensorFlow checkpoint"),
             ("random.index", "not a readable TensorFlow checkpoint index"), ("photo.index", "no SSTable footer"),
             ("model.pt", "not a TensorFlow checkpoint"), ("empty", "no TensorFlow checkpoint"),
             ("notes.tar.gz", "corrupt"), ("no_ckpt.tar", "no TensorFlow checkpoint")]
    for name, words in cases:
        with pytest.raises(UserError, match=words) as info:
            read_tf_checkpoint(tmp_path / name)
        assert str(tmp_path / name) in str(info.value), name


@pytest.mark.tf_reference
def test_damaged_reference_copies_are_refused(tmp_path, reference, copy_reference):
    def damaged(name, suffix, change):
        prefix = copy_reference("lraspp_small_os32", tmp_path / name)
        path = Path(f"{prefix}{suffix}")
        change(path)
        return prefix, path

    def flip_index_compression(path):
        data = bytearray(path.read_bytes())
        footer = bytes(data[-48:])
        pos = tfc._varint(footer, tfc._varint(footer, 0)[1])[1]
        offset, pos = tfc._varint(footer, pos)
        data[offset + tfc._varint(footer, pos)[0]] = 1  # snappy
        path.write_bytes(bytes(data))

    halve = lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # noqa: E731
    cases = [
        (damaged("no_shard", ".data-00000-of-00001", Path.unlink), "is missing"),
        (damaged("half_index", ".index", halve), "truncated"),
        (damaged("short_data", ".data-00000-of-00001", lambda p: p.write_bytes(p.read_bytes()[:-1000])), "truncated"),
        (damaged("snappy", ".index", flip_index_compression), "compressed"),
    ]
    for (prefix, path), words in cases:
        with pytest.raises(UserError, match=words) as info:
            read_tf_checkpoint(prefix)
        assert str(path) in str(info.value)
    truncated = tmp_path / "cut.tar.gz"
    with tarfile.open(truncated, "w:gz") as tar:
        tar.add(reference / "lraspp_small_os32" / "model.ckpt.index", "m/model.ckpt.index")
        tar.add(reference / "lraspp_small_os32" / "model.ckpt.data-00000-of-00001", "m/model.ckpt.data-00000-of-00001")
    truncated.write_bytes(truncated.read_bytes()[:-5000])
    with pytest.raises(UserError, match="corrupt") as info:
        read_tf_checkpoint(truncated)
    assert str(truncated) in str(info.value)
