"""segkit.weights, segkit.hub and tools/weights.py: the authors' models by name, served from a loopback HTTP server
as the zoo lays them out (the OS32 Large reference graph of tests/data/tf_reference, made by the authors' code with
the zoo model's flags): `tools/infer.py IMAGE --weights mnv3-large-cityscapes` gives the authors' labels; a cut
download, a corrupt archive, a missing member, a wrong checksum, two fetches at once and no network each end as
they should, with nothing wrong left in the cache."""
import dataclasses
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import segkit.weights as weights
from segkit.data.classes import ClassTable
from segkit.errors import UserError
from segkit.hub import MIRROR_VARIABLE, TIMEOUT_VARIABLE, Remote, fetch

ROOT = Path(__file__).resolve().parents[1]
LARGE = weights.WEIGHTS["mnv3-large-cityscapes"]


def zoo_tarball(reference, folder="deeplab_mnv3_large_cityscapes_trainfine", drop=(), graph="lraspp_large_os32"):
    """A tarball laid out as the DeepLab zoo's: FOLDER/frozen_inference_graph.pb and the model.ckpt files of the
    reference ``graph``."""
    members = {"frozen_inference_graph.pb": b"a frozen graph segkit does not read",
               "model.ckpt.index": (reference / graph / "model.ckpt.index").read_bytes(),
               "model.ckpt.data-00000-of-00001": (reference / graph / "model.ckpt.data-00000-of-00001").read_bytes()}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            if name in drop:
                continue
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Server:
    """A loopback HTTP server of ``files`` (name -> bytes); ``cut`` names files sent only half, with the whole
    length announced; ``delay`` seconds before each answer; ``hits`` counts the requests per name."""

    def __init__(self):
        self.files, self.cut, self.delay, self.hits = {}, set(), 0.0, {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                server.hits[name] = server.hits.get(name, 0) + 1
                time.sleep(server.delay)
                data = server.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if name in server.cut else data)

            def log_message(self, *args):
                pass

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up waiting is no error
                    super().handle_error(request, client_address)

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    server = Server()
    yield server
    server.close()


@pytest.fixture
def cache(tmp_path, monkeypatch, server):
    """$SEGKIT_HOME in tmp_path, the mirror pointed at the loopback server."""
    monkeypatch.setenv("SEGKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(MIRROR_VARIABLE, server.url)
    return tmp_path / "home" / "weights"


def cached_files(cache):
    """What the cache holds, lock files aside (they are how fetches wait for each other)."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_infer_by_name_gives_the_authors_labels(reference, server, cache, tmp_path):
    server.files[LARGE.remote.filename] = zoo_tarball(reference)
    environment = dict(os.environ)
    image = reference / "input" / "image.png"
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "infer.py"), str(image), "--weights",
                             "mnv3-large-cityscapes", "--backend", "onnxruntime", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=600, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "converted deeplab_mnv3_large_cityscapes_trainfine_2019_11_15.tar.gz (sha256 " in result.stdout
    label_ids = cv2.imread(str(tmp_path / "out" / "image_labelIds.png"), cv2.IMREAD_UNCHANGED)
    expected = np.load(reference / "lraspp_large_os32" / "labels.npz")["labels"][:1024, :2048]
    assert (ClassTable.cityscapes().to_classes(label_ids) == expected).mean() >= 0.9999
    assert cached_files(cache) == ["downloads/deeplab_mnv3_large_cityscapes_trainfine_2019_11_15.tar.gz",
                                   "mnv3-large-cityscapes.json", "mnv3-large-cityscapes.pt"]
    # a second run finds everything in the cache; with no checkpoint and no runs, infer takes this model and says so
    del server.files[LARGE.remote.filename]
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "infer.py"), str(image), "--backend", "onnxruntime"],
                            capture_output=True, text=True, timeout=600, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "using the authors' mnv3-large-cityscapes" in result.stdout and "converted" not in result.stdout
    assert (tmp_path / "infer" / "image_labelIds.png").is_file()  # outputs here, not in the cache
    assert server.hits == {LARGE.remote.filename: 1}


@pytest.mark.parametrize("damage, words", [
    ("cut", "fetch it again"),
    ("corrupt", "not a readable .tar.gz"),
    ("no graph", "lacks frozen_inference_graph.pb"),
    ("no data", "lacks model.ckpt*.data-*"),
    ("another model", "is not mnv3-large-cityscapes's model and was removed"),
])
def test_a_bad_download_leaves_nothing_in_the_cache(reference, server, cache, damage, words):
    name = LARGE.remote.filename
    if damage == "corrupt":
        server.files[name] = os.urandom(4096)
    elif damage == "another model":  # the Small graph under the Large name: the converter refuses it
        server.files[name] = zoo_tarball(reference, graph="lraspp_small_os32")
    else:
        dropped = {"no graph": ("frozen_inference_graph.pb",), "no data": ("model.ckpt.data-00000-of-00001",)}
        server.files[name] = zoo_tarball(reference, drop=dropped.get(damage, ()))
        if damage == "cut":
            server.cut.add(name)
    with pytest.raises(UserError) as error:
        weights.weights_path("mnv3-large-cityscapes", progress=False)
    assert "\n" not in str(error.value) and words in str(error.value), str(error.value)
    assert cached_files(cache) == []


def test_no_network_is_one_line_naming_the_address_and_the_mirror(cache, monkeypatch, server):
    server.close()  # nothing answers at the mirror's address now
    with pytest.raises(UserError) as error:
        weights.weights_path("mnv3-small-cityscapes", progress=False)
    message = str(error.value)
    assert "\n" not in message and server.url in message and MIRROR_VARIABLE in message
    monkeypatch.delenv(MIRROR_VARIABLE)
    entry = weights.WEIGHTS["mnv3-small-cityscapes"]  # its original host is down, and no mirror is set
    monkeypatch.setitem(weights.WEIGHTS, entry.name, dataclasses.replace(
        entry, remote=Remote(f"{server.url}/{entry.remote.filename}")))
    with pytest.raises(UserError) as error:
        weights.weights_path("mnv3-small-cityscapes", progress=False)
    assert "offline" in str(error.value) and MIRROR_VARIABLE in str(error.value)
    assert cached_files(cache) == []


def test_pinned_size_and_checksum_are_checked(server, cache, tmp_path):
    remote = Remote(f"{server.url}/x.bin", size=5, sha256="a" * 64)
    server.files["x.bin"] = b"12345"
    with pytest.raises(UserError, match="has SHA-256 .*not x.bin's"):
        fetch(remote, tmp_path / "c", progress=False)
    server.files["x.bin"] = b"1234"
    with pytest.raises(UserError, match="gave 4 bytes, not the 5 of x.bin"):
        fetch(remote, tmp_path / "c", progress=False)
    # torchvision's files: the hash prefix in the name, as torchvision checks it
    with pytest.raises(UserError, match="not mobilenet_v3_large-8738ca79.pth's 8738ca79"):
        server.files["mobilenet_v3_large-8738ca79.pth"] = b"not the weights"
        weights.weights_path("mnv3-large-imagenet", progress=False)
    assert not [p for p in (tmp_path / "c").iterdir() if not p.name.endswith(".lock")]
    assert cached_files(cache) == []


def test_two_fetches_at_once_download_once(reference, server, cache, tmp_path):
    server.files[LARGE.remote.filename] = zoo_tarball(reference)
    server.delay = 1.0  # both processes are waiting at the same time
    command = [sys.executable, str(ROOT / "tools" / "weights.py"), "fetch", "mnv3-large-cityscapes"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
            for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert server.hits == {LARGE.remote.filename: 1}
    assert sum("converted" in out for out, _ in outputs) == 1  # one converts, the other finds its checkpoint
    assert cached_files(cache) == ["downloads/deeplab_mnv3_large_cityscapes_trainfine_2019_11_15.tar.gz",
                                   "mnv3-large-cityscapes.json", "mnv3-large-cityscapes.pt"]


def test_a_mirror_folder_and_a_file_brought_by_hand(reference, cache, tmp_path, monkeypatch, tool, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / LARGE.remote.filename).write_bytes(zoo_tarball(reference))
    monkeypatch.setenv(MIRROR_VARIABLE, str(mirror))
    path = weights.weights_path("mnv3-large-cityscapes", progress=False)
    assert path == cache / "mnv3-large-cityscapes.pt" and "converted" in capsys.readouterr().out
    assert tool("weights").main(["path", "mnv3-large-cityscapes"]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    assert tool("weights").main(["path", "mnv3-small-cityscapes"]) == 1
    assert "tools/weights.py fetch mnv3-small-cityscapes" in capsys.readouterr().err
    # import: a file downloaded elsewhere, checked as a download is
    brought = tmp_path / "small.tar.gz"
    brought.write_bytes(zoo_tarball(reference, folder="deeplab_mnv3_small_cityscapes_trainfine"))
    with pytest.raises(SystemExit) as exit_:
        tool("weights").main(["import", "mnv3-small-cityscapes", str(brought)])  # the Large graph: refused
    assert exit_.value.code == 2 and "is not mnv3-small-cityscapes's model" in capsys.readouterr().err
    assert not (cache / "mnv3-small-cityscapes.pt").exists()
    large = tmp_path / "large.tar.gz"
    large.write_bytes(zoo_tarball(reference))
    assert tool("weights").main(["import", "mnv3-large-cityscapes", str(large)]) == 0
    assert "converted" in capsys.readouterr().out  # what was brought replaces what was there


def test_the_named_networks_are_the_zoo_configs():
    from segkit.config import load_config

    for name in ("mnv3-large-cityscapes", "mnv3-small-cityscapes"):
        config_file = ROOT / "configs" / "tf_zoo" / f"{name.rsplit('-', 1)[0].replace('-', '_')}_cityscapes.py"
        assert weights.zoo_config(name).to_dict() == load_config(config_file).to_dict(), name


def test_a_silent_server_fails_after_the_timeout_the_variable_sets(server, cache, monkeypatch):
    """The wait for a silent host is the user's to set (a slow link needs longer); a bad value is one line."""
    server.delay = 3.0  # answers (here a 404), but only after 3 s of silence
    monkeypatch.setenv(TIMEOUT_VARIABLE, "0.5")
    with pytest.raises(UserError) as error:
        weights.weights_path("mnv3-small-cityscapes", progress=False)
    message = str(error.value)
    assert "\n" not in message and "nothing arrived for 0.5 s" in message and TIMEOUT_VARIABLE in message
    assert cached_files(cache) == []
    for value in ("soon", "0", "-5", "nan"):
        monkeypatch.setenv(TIMEOUT_VARIABLE, value)
        with pytest.raises(UserError, match=f"{TIMEOUT_VARIABLE}='{value}' is not a number of seconds above 0"):
            weights.weights_path("mnv3-small-cityscapes", progress=False)
