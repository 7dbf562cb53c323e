"""Read TensorFlow V2 checkpoints (tensor bundles) with numpy alone, no TensorFlow.

A checkpoint ``PREFIX`` is two kinds of files:

* ``PREFIX.index``, a LevelDB-format SSTable: data blocks of prefix-compressed keys (with a restart array), an index
  block pointing at them, a metaindex block and a 48-byte footer ending in the magic number 0xdb4775248b80fb57; every
  block is followed by a compression byte (TF always writes 0, none) and a masked CRC32C.  Keys are tensor names; the
  value under ``""`` is a ``BundleHeaderProto`` (shard count, endianness, version), every other value a
  ``BundleEntryProto`` (dtype, shape, shard, byte offset and size, masked CRC32C of the bytes, slices).
* ``PREFIX.data-0000K-of-0000N``: the tensors' raw bytes; a string tensor is its varint64 lengths, a masked CRC32C of
  those lengths, then the bytes.

That is little enough to read by hand (protobuf wire format included), so importing pretrained DeepLab / slim weights
does not drag in TensorFlow, a multi-GB install with its own CUDA and numpy pins.  Every index block and every tensor
is checked against its CRC32C (``google_crc32c``).  Partitioned (sliced) variables are refused.
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import google_crc32c
import numpy as np

from segkit.errors import UserError

_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_DT_STRING, _DT_BFLOAT16 = 7, 14
# DataType enum -> numpy type code of the stored bytes (byte order added from the header); bfloat16 is read as uint16.
_DTYPES = {1: "f4", 2: "f8", 3: "i4", 4: "u1", 5: "i2", 6: "i1", 8: "c8", 9: "i8", 10: "b1", 14: "u2", 17: "u2",
           18: "c16", 19: "f2", 22: "u4", 23: "u8"}
_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
_ARCHIVES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


@dataclass
class TFCheckpoint:
    """Every tensor of one checkpoint: name -> array in TF's own layout (HWIO kernels, NHWC-style), sorted by name."""

    prefix: str
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


class _Corrupt(ValueError):
    """A malformed index; the owner of the file name turns it into a UserError."""


def crc32c(data) -> int:
    """CRC32C (Castagnoli, as LevelDB and TF use) of bytes-like ``data``: Google's C implementation."""
    return google_crc32c.value(bytes(data))


def _unmask(masked: int) -> int:
    """Undo LevelDB's CRC masking (rotate and add a constant, so CRCs of data holding CRCs stay distinct)."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ------------------------------------------------------------------------------------ protobuf wire format and SSTable
def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Corrupt("a varint runs past its record")
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return result, pos


def _proto(buf) -> dict[int, list]:
    """Protobuf message -> {field number: values}; varints and fixed ints as int, length-delimited as bytes."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = int.from_bytes(buf[pos:pos + width], "little"), pos + width
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos:pos + length]), pos + length
        else:
            raise _Corrupt(f"protobuf wire type {wire} is not used by checkpoints")
        if pos > len(buf):
            raise _Corrupt("a protobuf record is cut short")
        fields.setdefault(key >> 3, []).append(value)
    return fields


def _int(fields: dict[int, list], number: int) -> int:
    value = fields.get(number, [0])[-1]  # protobuf: the last occurrence of a scalar wins; absent means 0
    if not isinstance(value, int):
        raise _Corrupt(f"protobuf field {number} has the wrong wire type")
    return value


def _messages(fields: dict[int, list], number: int) -> list[dict[int, list]]:
    if not all(isinstance(value, bytes) for value in fields.get(number, [])):
        raise _Corrupt(f"protobuf field {number} has the wrong wire type")
    return [_proto(value) for value in fields.get(number, [])]


def _blocks(data: bytes, handles: list[tuple[int, int]]) -> list[bytes]:
    """Block contents after checking bounds, compression byte and CRC (over contents + compression byte)."""
    for offset, size in handles:
        if offset + size + 5 > len(data):
            raise _Corrupt("a block runs past the end of the file")
        if data[offset + size] != 0:
            raise _Corrupt(f"its blocks are compressed (type {data[offset + size]}), which TensorFlow never writes "
                           "and this reader does not decode")
    for offset, size in handles:
        crc = crc32c(memoryview(data)[offset:offset + size + 1])
        if _unmask(int.from_bytes(data[offset + size + 1:offset + size + 5], "little")) != crc:
            raise _Corrupt("a block fails its checksum")
    return [data[offset:offset + size] for offset, size in handles]


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """Key/value pairs of a block: each key shares a prefix with the one before, the restart array is not needed."""
    if len(block) < 4:
        raise _Corrupt("a block is too short")
    limit = len(block) - 4 * (int.from_bytes(block[-4:], "little") + 1)
    if limit < 0:
        raise _Corrupt("a block's restart array is malformed")
    entries, key, pos = [], b"", 0
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        size, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + size > limit:
            raise _Corrupt("a block entry runs past its block")
        key = key[:shared] + block[pos:pos + unshared]
        entries.append((key, block[pos + unshared:pos + unshared + size]))
        pos += unshared + size
    return entries


def _read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    """All key/value pairs of an SSTable, in key order."""
    if len(data) < _FOOTER_SIZE or int.from_bytes(data[-8:], "little") != _MAGIC:
        raise _Corrupt("no SSTable footer: the file is truncated or another kind of file")
    footer = data[-_FOOTER_SIZE:]
    pos = _varint(footer, _varint(footer, 0)[1])[1]  # skip the metaindex handle: bundles hold no filter blocks
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    handles = []
    for _, value in _block_entries(_blocks(data, [(index_offset, index_size)])[0]):
        offset, pos = _varint(value, 0)
        handles.append((offset, _varint(value, pos)[0]))
    return [pair for block in _blocks(data, handles) for pair in _block_entries(block)]


# ----------------------------------------------------------------------------------------------------- bundle entries
@dataclass
class _Entry:
    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc: int
    sliced: bool


def _entry(key: bytes, value: bytes) -> _Entry:
    fields = _proto(value)
    shape = (_messages(fields, 2) or [{}])[-1]
    dims = [_int(dim, 1) for dim in _messages(shape, 2)]
    dims = [d - (1 << 64) if d >= 1 << 63 else d for d in dims]  # int64 on the wire: -1 means unknown
    name = key.decode("utf-8", "backslashreplace")
    if _int(shape, 3) or min(dims, default=0) < 0:
        raise _Corrupt(f"tensor {name!r} has no fully defined shape")
    return _Entry(name, _int(fields, 1), tuple(dims), _int(fields, 3), _int(fields, 4), _int(fields, 5),
                  _int(fields, 6), 7 in fields)


def _parse_index(data: bytes) -> tuple[int, str, list[_Entry]]:
    """(shard count, numpy byte order, entries) of a bundle index."""
    pairs = _read_table(data)
    if not pairs or pairs[0][0] != b"":
        raise _Corrupt("no bundle header entry")
    header = _proto(pairs[0][1])
    num_shards, endianness = _int(header, 1), _int(header, 2)
    min_consumer = _int((_messages(header, 3) or [{}])[-1], 2)
    if num_shards < 1 or endianness not in (0, 1):
        raise _Corrupt("a malformed bundle header")
    if min_consumer > 1:
        raise _Corrupt(f"bundle format version {min_consumer} comes from a newer TensorFlow than this reader knows")
    return num_shards, "<>"[endianness], [_entry(key, value) for key, value in pairs[1:]]


def _decode(entry: _Entry, chunk: memoryview, order: str) -> tuple[np.ndarray, bytes | memoryview]:
    """(array, the bytes TF's CRC covers); raises _Corrupt when the bytes do not fit the entry."""
    count = math.prod(entry.shape)
    if entry.dtype == _DT_STRING:
        lengths, pos = [], 0
        for _ in range(count):
            length, pos = _varint(chunk, pos)
            lengths.append(length)
        if pos + 4 + sum(lengths) != len(chunk):
            raise _Corrupt("its string lengths do not add up to its stored size")
        array, start = np.empty(count, dtype=object), pos
        pos += 4
        for i, length in enumerate(lengths):
            array[i], pos = bytes(chunk[pos:pos + length]), pos + length
        # TF's CRC covers the lengths as fixed-width ints (not varints), then the stored length CRC, then the bytes.
        byteorder = "little" if order == "<" else "big"
        widths = b"".join(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, byteorder) for n in lengths)
        return array.reshape(entry.shape), widths + bytes(chunk[start:])
    dtype = np.dtype(order + _DTYPES[entry.dtype])
    if len(chunk) != count * dtype.itemsize:
        raise _Corrupt(f"it stores {len(chunk)} bytes but shape {list(entry.shape)} of {dtype.name} needs "
                       f"{count * dtype.itemsize}")
    array = np.frombuffer(chunk, dtype=dtype).reshape(entry.shape)
    if entry.dtype == _DT_BFLOAT16:  # bfloat16 is the top half of a float32
        return (array.astype(np.uint32) << 16).view(np.float32), chunk
    return array.astype(dtype.newbyteorder("="), copy=True), chunk


def _load(prefix: str, read: Callable[[str], bytes | None]) -> TFCheckpoint:
    index_name = prefix + ".index"
    data = read(".index")
    if data is None:
        raise UserError(f"Checkpoint index {index_name} does not exist; pass the prefix of an existing "
                        "PREFIX.index / PREFIX.data-* pair.")
    try:
        num_shards, order, entries = _parse_index(data)
    except (_Corrupt, TypeError) as exc:
        raise UserError(f"{index_name} is not a readable TensorFlow checkpoint index ({exc}); pass an intact .index "
                        "file written by TensorFlow (re-download or re-copy it).") from None
    for entry in entries:
        if entry.sliced:
            raise UserError(f"{index_name} stores variable {entry.name!r} as partitioned slices, which this reader "
                            "does not support; re-save the checkpoint with unpartitioned variables.")
        if entry.dtype not in _DTYPES and entry.dtype != _DT_STRING:
            raise UserError(f"{index_name} stores variable {entry.name!r} with TensorFlow dtype enum {entry.dtype}, "
                            "which this reader does not support (numeric, bool and string only); re-save the "
                            "checkpoint without it.")
        if not 0 <= entry.shard < num_shards:
            raise UserError(f"{index_name} is corrupt: variable {entry.name!r} names shard {entry.shard} of "
                            f"{num_shards}; re-download or re-copy the checkpoint.")
    shards: dict[int, tuple[str, bytes]] = {}
    for shard in sorted({entry.shard for entry in entries}):
        shard_name = f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"
        shard_data = read(shard_name[len(prefix):])
        if shard_data is None:
            raise UserError(f"Checkpoint data file {shard_name} is missing; put it next to {index_name}.")
        shards[shard] = shard_name, shard_data
    arrays = {}
    for entry in entries:
        shard_name, shard_data = shards[entry.shard]
        if entry.offset + entry.size > len(shard_data):
            raise UserError(f"Checkpoint data file {shard_name} is truncated (variable {entry.name!r} ends at byte "
                            f"{entry.offset + entry.size} of {len(shard_data)}); re-download or re-copy it.")
        try:
            arrays[entry.name], crc_bytes = _decode(
                entry, memoryview(shard_data)[entry.offset:entry.offset + entry.size], order)
        except _Corrupt as exc:
            raise UserError(f"Checkpoint {prefix} is corrupt: variable {entry.name!r}: {exc}; re-download or "
                            "re-copy it.") from None
        if _unmask(entry.crc) != crc32c(crc_bytes):
            raise UserError(f"Checkpoint data file {shard_name} is corrupt (variable {entry.name!r} fails its "
                            "checksum); re-download or re-copy it.")
    return TFCheckpoint(prefix, dict(sorted(arrays.items())))


# ------------------------------------------------------------------------------------------------ finding the files
def _step(prefix: str) -> int:
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else -1


def _choose(index_names: list[str], state_files: dict[str, str]) -> str:
    """One prefix among posix paths of *.index files: named by a `checkpoint` state file, under ema/, highest step."""
    prefixes = sorted(name[:-len(".index")] for name in index_names)
    named = set()
    for folder, text in state_files.items():
        for value in re.findall(r'^model_checkpoint_path:\s*"(.*)"\s*$', text, re.M):
            # An absolute path was valid on the training machine only; its base name is what sits beside the file.
            value = posixpath.basename(value) if posixpath.isabs(value) else value
            named.add(posixpath.normpath(posixpath.join(folder, value)))
    candidates = [p for p in prefixes if p in named] or prefixes
    # slim's ImageNet tarballs hold ema/ (the averaged weights its evaluation uses) beside pristine/.
    candidates = [p for p in candidates if "ema" in p.split("/")[:-1]] or candidates
    return max(candidates, key=lambda p: (_step(p), p))


def _read_file(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes() if os.path.isfile(path) else None
    except OSError as exc:
        raise UserError(f"Cannot read checkpoint file {path} ({exc.strerror}); check its permissions.") from None


def _from_directory(root: Path) -> tuple[str, Callable[[str], bytes | None]]:
    index_names = [p.relative_to(root).as_posix() for p in root.rglob("*.index")
                   if p.is_file() and not p.name.startswith("._")]
    if not index_names:
        raise UserError(f"Directory {root} holds no TensorFlow checkpoint (no *.index file, searched recursively); "
                        "pass the folder or archive that holds PREFIX.index and PREFIX.data-* files.")
    states = {p.parent.relative_to(root).as_posix(): p.read_text(errors="replace") for p in root.rglob("checkpoint")
              if p.is_file()}
    prefix = str(root / _choose(index_names, states))
    return prefix, lambda suffix: _read_file(prefix + suffix)


def _from_archive(path: Path) -> tuple[str, Callable[[str], bytes | None]]:
    """Read the chosen checkpoint's members into memory; nothing is extracted to disk."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {posixpath.normpath(m.name): m for m in tar.getmembers() if m.isfile()}
            index_names = [n for n in members if n.endswith(".index") and not posixpath.basename(n).startswith("._")]
            if not index_names:
                raise UserError(f"Archive {path} holds no TensorFlow checkpoint (no *.index member); pass an archive "
                                "that holds PREFIX.index and PREFIX.data-* files.")
            states = {posixpath.dirname(n): tar.extractfile(m).read().decode(errors="replace")
                      for n, m in members.items() if posixpath.basename(n) == "checkpoint"}
            chosen = _choose(index_names, states)
            files = {n[len(chosen):]: tar.extractfile(m).read() for n, m in members.items()
                     if n.startswith(chosen) and (n[len(chosen):] == ".index"
                                                  or _DATA_SUFFIX.fullmatch(n[len(chosen):]))}
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        raise UserError(f"Archive {path} is corrupt or not a tar archive; re-download it.") from None
    return f"{path}:{chosen}", files.get


def resolve_checkpoint_files(source: str | os.PathLike) -> tuple[str, Callable[[str], bytes | None]]:
    """(prefix as shown to users, reader of PREFIX+suffix bytes or None) for any accepted form of ``source``."""
    text, path = os.fspath(source), Path(source)
    if path.is_dir():
        return _from_directory(path)
    if path.is_file():
        if text.endswith(".index"):
            prefix = text[:-len(".index")]
        elif _DATA_SUFFIX.search(text):
            prefix = _DATA_SUFFIX.sub("", text)
        elif text.lower().endswith(_ARCHIVES) or tarfile.is_tarfile(path):
            return _from_archive(path)
        elif os.path.isfile(text + ".index"):
            prefix = text
        else:
            raise UserError(f"{text} is not a TensorFlow checkpoint; pass the PREFIX of a PREFIX.index + "
                            "PREFIX.data-* pair, one of those files, or a directory or .tar.gz holding them.")
        return prefix, lambda suffix: _read_file(prefix + suffix)
    if os.path.isfile(text + ".index"):
        return text, lambda suffix: _read_file(text + suffix)
    raise UserError(f"Checkpoint {text} does not exist (nor does {text}.index); pass an existing checkpoint prefix, "
                    ".index file, directory or .tar.gz archive.")


def read_tf_checkpoint(source: str | os.PathLike) -> TFCheckpoint:
    """Every tensor of the TF V2 checkpoint at ``source``: a prefix, its .index or .data-* file, a directory or a tar
    archive (.tar, .tar.gz, .tgz) holding one; raises UserError for anything unreadable, never a partial result."""
    return _load(*resolve_checkpoint_files(source))
