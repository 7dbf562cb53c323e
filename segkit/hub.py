"""Files fetched once into segkit's cache: downloaded (or copied from a mirror) into a partial file, checked, and
only then given their real name.

- The cache is ``$SEGKIT_HOME`` (default ``~/.cache/segkit``): ``home()``.
- ``$SEGKIT_WEIGHTS_MIRROR``, a base URL or a local folder, is looked up by file name instead of a file's original
  host: for air-gapped sites, proxies, and tests.
- A file is checked before it is kept: its pinned size and SHA-256 where they are known (a torchvision file
  name's hash prefix, as torchvision checks it), and a caller's own check (an archive's layout). A file that fails
  is removed; a partial file never has the real name.
- Two processes fetching one file: one downloads, the other waits for it (a lock file beside it) and then finds it.
- Offline, or a host that does not answer: one line naming the address and the mirror variable.
- ``$SEGKIT_NETWORK_TIMEOUT``: how long a connection may stay silent before it fails (``network_timeout``); a slow
  or distant link raises it.

No torch here: the PyTorch-free runtime fetches through it too.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import math
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from segkit.errors import UserError

HOME_VARIABLE = "SEGKIT_HOME"
MIRROR_VARIABLE = "SEGKIT_WEIGHTS_MIRROR"
TIMEOUT_VARIABLE = "SEGKIT_NETWORK_TIMEOUT"
# Seconds a connection may stay silent -- connecting, or between two reads -- before it is a failure rather than a
# hang: long enough for a slow or distant link to go on delivering, and settable where even that is too short.
DEFAULT_TIMEOUT_S = 60.0
CHUNK = 1 << 20


def home() -> Path:
    """segkit's cache: ``$SEGKIT_HOME``, default ``~/.cache/segkit``."""
    return Path(os.environ.get(HOME_VARIABLE) or "~/.cache/segkit").expanduser()


def network_timeout() -> float:
    """Seconds a network connection may stay silent before it fails: ``$SEGKIT_NETWORK_TIMEOUT``, default 60."""
    value = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not value:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UserError(f"{TIMEOUT_VARIABLE}={value!r} is not a number of seconds above 0; set it to one (e.g. 120) "
                        f"or unset it for {DEFAULT_TIMEOUT_S:g}.")
    return seconds


def timed_out(exc: BaseException) -> bool:
    """Whether a network error is a silence longer than ``network_timeout`` (urllib wraps it in a URLError)."""
    return isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)


def timeout_hint(timeout: float) -> str:
    return f"nothing arrived for {timeout:g} s: on a slow link raise {TIMEOUT_VARIABLE} (seconds)"


@dataclass(frozen=True)
class Remote:
    """A file on the network: its address and what it is known to be (``size`` in bytes, ``sha256``; or, for
    torchvision's files, the first hex digits of the SHA-256 that their name carries)."""

    url: str
    size: int | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def source(self) -> str:
        """Where it is fetched from: the mirror's copy (``$SEGKIT_WEIGHTS_MIRROR``/file name) or the URL."""
        mirror = os.environ.get(MIRROR_VARIABLE, "").strip()
        if not mirror:
            return self.url
        if "://" in mirror:
            return mirror.rstrip("/") + "/" + self.filename
        return str(Path(mirror).expanduser() / self.filename)


def fetch(remote: Remote, folder: Path, check: Callable[[Path], None] | None = None,
          progress: bool = True) -> Path:
    """``folder/remote.filename``, fetched once: downloaded (or copied from the mirror) into a partial file,
    checked (size, SHA-256, ``check(path)``, which raises UserError for a bad file), then renamed. A file already
    there was checked when it arrived."""
    target = folder / remote.filename
    with locked(target):
        if target.is_file():
            return target
        partial = target.with_name(f".{target.name}.partial")
        try:
            _download(remote.source(), partial, remote, progress)
            verify(partial, remote, check, shown=remote.source())
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def import_file(path: Path, remote: Remote, folder: Path, check: Callable[[Path], None] | None = None) -> Path:
    """A file brought by hand (``tools/weights.py import``) into the cache as if fetched: copied, checked,
    renamed."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"{path} does not exist; give the file you downloaded ({remote.filename}).")
    target = folder / remote.filename
    with locked(target):
        partial = target.with_name(f".{target.name}.partial")
        try:
            shutil.copyfile(path, partial)
            verify(partial, remote, check, shown=str(path))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def verify(path: Path, remote: Remote, check: Callable[[Path], None] | None, shown: str) -> None:
    """The file's size and SHA-256 against ``remote``'s, then ``check``; one UserError naming ``shown``."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        raise UserError(f"{shown} gave {size:,} bytes, not the {remote.size:,} of {remote.filename} (a download cut "
                        "short, or another file); fetch it again.")
    if remote.sha256 or remote.sha256_prefix:
        digest = file_sha256(path)
        expected = remote.sha256 or remote.sha256_prefix
        if not digest.startswith(expected):
            raise UserError(f"{shown} has SHA-256 {digest[:16]}..., not {remote.filename}'s {expected[:16]}... (a "
                            "damaged or replaced file); fetch it again, or check the mirror's copy.")
    if check is not None:
        check(path)


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(source: str, partial: Path, remote: Remote, progress: bool) -> None:
    partial.parent.mkdir(parents=True, exist_ok=True)
    if "://" not in source:  # a mirror folder
        if not Path(source).is_file():
            raise UserError(f"{source} does not exist: the mirror {MIRROR_VARIABLE}={os.environ[MIRROR_VARIABLE]} "
                            f"holds no {remote.filename}; put the file there, unset {MIRROR_VARIABLE}, or bring the "
                            "file by hand (tools/weights.py import).")
        shutil.copyfile(source, partial)
        return
    timeout = network_timeout()
    try:
        with urllib.request.urlopen(source, timeout=timeout) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or remote.size
            with _bar(total, remote.filename, progress) as bar:
                while block := response.read(CHUNK):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if timed_out(exc):
            hint = timeout_hint(timeout)
        elif os.environ.get(MIRROR_VARIABLE):
            hint = f"check {MIRROR_VARIABLE}"
        else:
            hint = f"offline, set {MIRROR_VARIABLE} to a folder or server holding {remote.filename}"
        raise UserError(f"cannot download {source} ({_one_line(reason)}); {hint}, or bring the file by hand "
                        "(tools/weights.py import).") from None


@contextlib.contextmanager
def _bar(total: int | None, name: str, progress: bool):
    from tqdm import tqdm

    with tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024, desc=name, file=sys.stderr,
              disable=not progress, leave=False) as bar:
        yield bar


@contextlib.contextmanager
def locked(target: Path):
    """An exclusive lock on ``target``'s lock file: one process fetches, the others wait for it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.with_name(f".{target.name}.lock")
    with open(lock, "a") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: no waiting, but still no torn file (partial, then rename)
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _one_line(reason) -> str:
    return " ".join(str(reason).split())[:200]
