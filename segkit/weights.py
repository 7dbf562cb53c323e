"""Weights by name: the authors' Cityscapes models and the ImageNet initialisations, fetched once into
``$SEGKIT_HOME/weights/`` (``segkit.hub``: mirror, checks, one download at a time) and, for the Cityscapes models,
converted once into a segkit checkpoint.

    weights_path("mnv3-large-cityscapes")       # a segkit checkpoint: --weights NAME, Predictor.from_pretrained
    weights_path("mnv3-large-imagenet-slim")    # an initialisation file: model.pretrained=NAME

The Cityscapes tarballs (DeepLab's model zoo) have no published checksum: what is checked is the archive's layout
(its folder with ``frozen_inference_graph.pb`` and the checkpoint, every byte of the gzip stream) and then the
converter's strict check of every variable; the SHA-256 seen is recorded beside the converted checkpoint
(``NAME.json``) and printed. The ImageNet files are checked against their published size and SHA-256 (torchvision's
against the hash prefix in their name, as torchvision does).
"""
from __future__ import annotations

import gzip
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from segkit.errors import UserError, check_choice
from segkit.fileio import write_json_atomic
from segkit.hub import Remote, fetch, file_sha256, home, import_file, locked

FORMAT_VERSION = 1  # of the converted checkpoints' records: a change converts again


@dataclass(frozen=True)
class NamedWeights:
    """One name: where its file lives, what it is, and (a segmentation model) the network it converts into."""

    name: str
    remote: Remote
    description: str
    zoo_folder: str | None = None  # a DeepLab zoo tarball's folder: the file converts into a segkit checkpoint
    config: str | None = None  # its network: segkit.weights.zoo_config(name)

    @property
    def segmentation(self) -> bool:
        return self.zoo_folder is not None

    def check(self, path: Path) -> None:
        if self.zoo_folder is not None:
            check_zoo_archive(path, self.zoo_folder)


_ZOO = "http://download.tensorflow.org/models"
_SLIM = "https://storage.googleapis.com/mobilenet_v3/checkpoints"
_TORCHVISION = "https://download.pytorch.org/models"
WEIGHTS = {weights.name: weights for weights in (
    NamedWeights("mnv3-large-cityscapes", Remote(f"{_ZOO}/deeplab_mnv3_large_cityscapes_trainfine_2019_11_15.tar.gz"),
                 "the authors' MobileNetV3-Large LR-ASPP, Cityscapes fine, OS32 (72.41 % val mIoU, DeepLab zoo)",
                 "deeplab_mnv3_large_cityscapes_trainfine", "large"),
    NamedWeights("mnv3-small-cityscapes", Remote(f"{_ZOO}/deeplab_mnv3_small_cityscapes_trainfine_2019_11_15.tar.gz"),
                 "the authors' MobileNetV3-Small LR-ASPP, Cityscapes fine, OS32 (68.99 % val mIoU, DeepLab zoo)",
                 "deeplab_mnv3_small_cityscapes_trainfine", "small"),
    NamedWeights("mnv3-large-imagenet-slim", Remote(
        f"{_SLIM}/v3-large_224_1.0_float.tgz", 184_251_120,
        "9be8563f92022f412c82f2811d670888d6db998e2da9af3e71415fdde2f4f504"),
        "slim's MobileNetV3-Large ImageNet checkpoint (TF; for data.normalize=tf)"),
    NamedWeights("mnv3-small-imagenet-slim", Remote(
        f"{_SLIM}/v3-small_224_1.0_float.tgz", 113_230_261,
        "e60ad9f450f892ae56f8b9122ffc750d88940d9e6b63f6dc70649179fb3a9065"),
        "slim's MobileNetV3-Small ImageNet checkpoint (TF; for data.normalize=tf)"),
    NamedWeights("mnv3-large-imagenet", Remote(f"{_TORCHVISION}/mobilenet_v3_large-8738ca79.pth",
                                               sha256_prefix="8738ca79"),
                 "torchvision's MobileNetV3-Large ImageNet weights (for data.normalize=imagenet)"),
    NamedWeights("mnv3-small-imagenet", Remote(f"{_TORCHVISION}/mobilenet_v3_small-047dcff4.pth",
                                               sha256_prefix="047dcff4"),
                 "torchvision's MobileNetV3-Small ImageNet weights (for data.normalize=imagenet)"),
    NamedWeights("mnv2-imagenet", Remote(f"{_TORCHVISION}/mobilenet_v2-b0353104.pth", sha256_prefix="b0353104"),
                 "torchvision's MobileNetV2 ImageNet weights (for data.normalize=imagenet)"),
)}
# model.pretrained=imagenet: torchvision's weights of the config's backbone
TORCHVISION_IMAGENET = {"mobilenet_v3_large": "mnv3-large-imagenet", "mobilenet_v3_small": "mnv3-small-imagenet",
                        "mobilenet_v2": "mnv2-imagenet"}
DEFAULT = "mnv3-large-cityscapes"  # tools/infer.py's model when no checkpoint is given and no run of yours exists


def folder() -> Path:
    return home() / "weights"


def lookup(name: str, segmentation: bool | None = None) -> NamedWeights:
    """The entry ``name``; with ``segmentation`` True, one that is a whole segmentation model (False: an
    initialisation)."""
    check_choice("weights", name, WEIGHTS, "weights")
    entry = WEIGHTS[name]
    if segmentation and not entry.segmentation:
        raise UserError(f"weights={name!r} is an ImageNet initialisation, not a segmentation model; start a training "
                        f"with it (--set model.pretrained={name}), or choose one of "
                        f"{', '.join(n for n, w in WEIGHTS.items() if w.segmentation)}.", "weights")
    return entry


def weights_path(name: str, progress: bool = True, say=print) -> Path:
    """The file of ``name``, fetched (and, a Cityscapes model, converted) on first use: a segkit checkpoint, or
    the initialisation file (slim's .tgz, torchvision's .pth)."""
    entry = lookup(name)
    archive = fetch(entry.remote, folder() / "downloads", entry.check, progress)
    return convert(entry, archive, say) if entry.segmentation else archive


def import_weights(name: str, path, say=print) -> Path:
    """A file brought by hand (downloaded elsewhere) into the cache under ``name``, checked as a download is."""
    entry = lookup(name)
    archive = import_file(Path(path), entry.remote, folder() / "downloads", entry.check)
    converted = folder() / f"{name}.pt"
    converted.with_suffix(".json").unlink(missing_ok=True)  # convert what was brought, not an earlier file
    return convert(entry, archive, say) if entry.segmentation else archive


def cached_path(name: str) -> Path | None:
    """Where ``name`` is in the cache, or None where it was never fetched (nothing is fetched here)."""
    entry = lookup(name)
    path = folder() / f"{name}.pt" if entry.segmentation else folder() / "downloads" / entry.remote.filename
    return path if path.is_file() and (not entry.segmentation or _record_fits(path, entry)) else None


def convert(entry: NamedWeights, archive: Path, say=print) -> Path:
    """The zoo tarball ``archive`` converted into a segkit checkpoint ``NAME.pt`` (once; its record ``NAME.json``
    holds the archive's SHA-256); an archive whose variables do not convert is removed."""
    out = folder() / f"{entry.name}.pt"
    with locked(out):  # two processes: one converts, the other finds its checkpoint
        if not (out.is_file() and _record_fits(out, entry, archive)):
            _convert(entry, archive, out, say)
    return out


def _convert(entry: NamedWeights, archive: Path, out: Path, say) -> None:
    sha256 = file_sha256(archive)
    from segkit.checkpoint import save_checkpoint  # torch: only to convert
    from segkit.models.tf_weights import convert_to_checkpoint

    try:
        state, conversion = convert_to_checkpoint(archive, zoo_config(entry.name))
    except UserError as exc:
        archive.unlink(missing_ok=True)
        raise UserError(f"{archive.name} is not {entry.name}'s model and was removed ({exc}); fetch it again.",
                        "weights") from None
    state["converted_from"] = entry.remote.filename
    save_checkpoint(out, state)
    write_json_atomic(out.with_suffix(".json"), {"format": FORMAT_VERSION, "name": entry.name,
                                                 "file": entry.remote.filename, "sha256": sha256,
                                                 "bytes": archive.stat().st_size, "archive_mtime_ns": _mtime(archive),
                                                 "variables": len(conversion.loaded)})
    say(f"{entry.name}: converted {entry.remote.filename} (sha256 {sha256}, {len(conversion.loaded)} variables) "
        f"into {out}")


def zoo_config(name: str):
    """The network a Cityscapes name converts into: Table 7's row (8: Large, 11: Small) at the zoo's output
    stride 32 (configs/tf_zoo/ are these)."""
    from segkit.config import table7_config

    entry = lookup(name, segmentation=True)
    config = table7_config(8 if entry.config == "large" else 11)
    config.name = f"mnv3_{entry.config}_cityscapes"
    config.model.output_stride = 32
    return config.resolved()


def check_zoo_archive(path: Path, zoo_folder: str) -> None:
    """A DeepLab zoo tarball: every byte of its gzip stream readable (a cut download fails here), and its folder
    holding ``frozen_inference_graph.pb`` and a checkpoint (``.index`` and ``.data-*``)."""
    try:
        with gzip.open(path, "rb") as stream:  # to its end: the gzip trailer's CRC and length are checked
            while stream.read(1 << 20):
                pass
        with tarfile.open(path, "r:gz") as tar:
            names = {member.name.lstrip("./") for member in tar.getmembers() if member.isfile()}
    except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
        raise UserError(f"{path.name} is not a readable .tar.gz ({' '.join(str(exc).split())[:120]}): a download "
                        "cut short or a damaged file; fetch it again.", "weights") from None
    inside = {name[len(zoo_folder) + 1:] for name in names if name.startswith(zoo_folder + "/")}
    wanted: list[tuple[str, Callable[[str], bool]]] = [
        ("frozen_inference_graph.pb", lambda n: n == "frozen_inference_graph.pb"),
        ("model.ckpt*.index", lambda n: n.startswith("model.ckpt") and n.endswith(".index")),
        ("model.ckpt*.data-*", lambda n: n.startswith("model.ckpt") and ".data-" in n)]
    missing = [label for label, wanted_name in wanted if not any(map(wanted_name, inside))]
    if missing:
        raise UserError(f"{path.name} is not laid out as the DeepLab zoo's archive: {zoo_folder}/ lacks "
                        f"{', '.join(missing)}; fetch it again.", "weights")


def describe_all() -> list[tuple[str, str, str]]:
    """(name, what it is, where it is cached or "not fetched") of every name, for ``tools/weights.py list``."""
    return [(name, entry.description, str(cached_path(name) or "not fetched")) for name, entry in WEIGHTS.items()]


def _record_fits(out: Path, entry: NamedWeights, archive: Path | None = None) -> bool:
    """Whether ``NAME.json`` says ``out`` was converted, in this format, from the archive now in the cache."""
    import json

    try:
        record = json.loads(out.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return False
    archive = archive or folder() / "downloads" / entry.remote.filename
    return (record.get("format") == FORMAT_VERSION and archive.is_file()
            and record.get("bytes") == archive.stat().st_size and record.get("archive_mtime_ns") == _mtime(archive))


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns
