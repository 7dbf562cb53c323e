"""segkit.cluster and tools/infer.py --ray: the stages and the Segmenter as plain Python, the Python API on a local
Ray, and the command line on the synthetic city -- outputs byte-identical to the single-process run, a rerun
skipping what is done, a job resumed after a kill, corrupt photos in the manifest, a worker killed mid-job."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import ray
import torch

from segkit.checkpoint import save_checkpoint
from segkit.cluster import (MANIFEST, ClusterOptions, Segmenter, is_done, pack_bundles, read_manifest, read_photos,
                            unpack_bundle, write_results)
from segkit.cluster.job import check_address
from segkit.config import Config, ModelConfig
from segkit.data.synthetic import generate_scene, image_rng
from segkit.deploy.photos import write_outputs
from segkit.errors import UserError
from segkit.fileio import write_png
from segkit.hub import TIMEOUT_VARIABLE
from segkit.models import build_model
from segkit.runtime.predictor import RuntimePredictor

ROOT = Path(__file__).resolve().parents[1]
# Ray's own DataContext warns about its deprecated settings when it is copied into a job; not segkit's to heed.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data")
# The actor's process title, as Ray sets it: the network stage alone (decoding fused into it would read
# "MapWorker(MapBatches(read_photos)->MapBatches(Segmenter))").
RAY_SIGNS = ("MapWorker(MapBatches(Segmenter))",)


def city(folder: Path, count: int, height: int = 256, width: int = 512, start: int = 0) -> list[Path]:
    """``count`` photos of the synthetic city as PNGs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(start, start + count):
        photo, _ = generate_scene(height, width, image_rng(0, "val", index))
        write_png(folder / f"street_{index:03d}.png", photo)
        paths.append(folder / f"street_{index:03d}.png")
    return paths


def infer(cwd, *args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "infer.py"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST).read_text().splitlines() if line.strip()]


def same_files(a: Path, b: Path, names) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# ---- the stages and the Segmenter, without Ray ----------------------------------------------------------------

def test_segmenter_labels_are_the_runtimes_and_bad_rows_pass_through(small_checkpoint, tmp_path, monkeypatch):
    checkpoint = small_checkpoint[0]
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, size, dtype=np.uint8) for size in ((96, 160, 3), (128, 96, 3), (96, 160, 3))]
    bundles = pack_bundles(checkpoint, [(96, 160), (128, 96)], "half", "onnxruntime", say=lambda line: None)
    # a worker's own cache: the packed bundles land there, checked, and a second actor finds them
    monkeypatch.setenv("SEGKIT_HOME", str(tmp_path / "worker_home"))
    segmenter = Segmenter(bundles=bundles, resolution="half", threads=1)
    assert sorted(p.name for p in (tmp_path / "worker_home" / "bundles").iterdir() if not p.name.startswith(".")) \
        == sorted(b["name"] for b in bundles)
    assert unpack_bundle(bundles[0]).folder == tmp_path / "worker_home" / "bundles" / bundles[0]["name"]
    batch = {"image": np.array(photos + [np.zeros((64, 64, 3), np.uint8), np.zeros((20, 40, 3), np.uint8),
                                         np.zeros((0, 0, 3), np.uint8)], dtype=object),
             "input": np.array(["a.png", "b.png", "c.png", "d.png", "e.png", "f.png"]),
             "error": np.array(["", "", "", "", "", "f.png: cannot decode image"])}
    out = segmenter(batch)
    reference = RuntimePredictor(checkpoint, "onnxruntime", threads=1, say=lambda line: None)
    for index, photo in enumerate(photos):
        assert out["error"][index] == ""
        assert np.array_equal(out["labels"][index], reference.predict(photo, resolution="half"))
    assert out["error"][3].startswith("d.png: no bundle for 64x64 photos")
    assert out["error"][4].startswith("e.png: the photo is 40x20 pixels")
    assert out["error"][5] == "f.png: cannot decode image" and out["labels"][5].shape == (0, 0)
    assert list(out["input"]) == list(batch["input"]) and out["network_ms"].dtype == np.float64
    assert len(set(out["worker"])) == 1 and out["worker"][0].endswith(f"/{os.getpid()}")
    assert segmenter.table.to_dict() == reference.table.to_dict()
    # a bundle folder the workers see (a shared file system) serves as well
    by_folder = Segmenter(bundles=[str(unpack_bundle(bundles[0]).folder)], resolution="half", threads=1)
    assert np.array_equal(by_folder.predict(photos[0]), out["labels"][0])
    with pytest.raises(UserError, match="made for half resolution, not full"):
        Segmenter(bundles=bundles, resolution="full")
    with pytest.raises(UserError, match="bundles or a checkpoint"):
        Segmenter()


def test_workers_of_bundles_need_no_pytorch(small_checkpoint, tmp_path):
    """What a worker runs in bundle mode -- the three stages -- in a process where PyTorch cannot be imported."""
    import pickle

    city(tmp_path / "in", 1, 64, 96)
    bundles = pack_bundles(small_checkpoint[0], [(64, 96)], say=lambda line: None)
    (tmp_path / "bundles.pkl").write_bytes(pickle.dumps(bundles))
    code = """
import pickle, sys
import numpy as np
sys.modules["torch"] = None  # import torch fails
from segkit.cluster import Segmenter, read_photos, write_results
segmenter = Segmenter(bundles=pickle.loads(open("bundles.pkl", "rb").read()), threads=1)
batch = read_photos({"input": np.array(["in/street_000.png"]), "name": np.array(["street"])})
print(list(write_results(segmenter(batch), "out", segmenter.table)["status"]))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "['ok']", result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "street_color.png", "street_labelIds.png", "street_overlay.png"]


def test_segmenter_with_a_checkpoint_runs_the_pytorch_predictor(small_checkpoint):
    from segkit.predict import Predictor

    checkpoint = small_checkpoint[0]
    photo = np.random.default_rng(1).integers(0, 256, (96, 160, 3), dtype=np.uint8)
    segmenter = Segmenter(checkpoint=checkpoint, backend="torch", threads=1)
    out = segmenter({"image": photo[None]})  # one size: (N, H, W, 3)
    expected = Predictor.from_checkpoint(checkpoint, backend="torch").predict(photo)
    assert out["error"] == [""] and np.array_equal(out["labels"][0], expected)


def test_read_and_write_stages_give_the_single_process_files_and_manifest_lines(small_checkpoint, tmp_path):
    good = city(tmp_path / "in", 1, 64, 96)[0]
    (tmp_path / "in" / "text.png").write_text("not an image")
    png = good.read_bytes()
    (tmp_path / "in" / "cut.png").write_bytes(png[: len(png) // 2])
    paths = [str(good), str(tmp_path / "in" / "text.png"), str(tmp_path / "in" / "cut.png"), str(tmp_path / "no.png")]
    read = read_photos({"input": np.array(paths), "name": np.array(["good", "text", "cut", "no"])})
    assert read["image"][0].shape == (64, 96, 3) and [e == "" for e in read["error"]] == [True, False, False, False]
    assert "does not exist" in read["error"][3] and all(p in e for p, e in zip(paths[1:], read["error"][1:]))
    segmenter = Segmenter(bundles=pack_bundles(small_checkpoint[0], [(64, 96)], say=lambda line: None), threads=1)
    written = write_results(segmenter(read), str(tmp_path / "out"), segmenter.table, model="m")
    rows = [json.loads(record) for record in written["record"]]
    assert list(written["status"]) == ["ok", "failed", "failed", "failed"]
    assert rows[0]["outputs"] == ["good_color.png", "good_overlay.png", "good_labelIds.png"]
    assert set(rows[0]["milliseconds"]) == {"read", "network", "write"} and rows[0]["model"] == "m"
    assert rows[1]["outputs"] == [] and rows[1]["reason"] == read["error"][1]
    write_outputs(tmp_path / "ref", "good", read["image"][0], segmenter.predict(read["image"][0]), segmenter.table)
    same_files(tmp_path / "out", tmp_path / "ref", rows[0]["outputs"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(rows[0]["outputs"])  # no temp files


def test_the_manifest_says_what_is_done(tmp_path):
    for name in ("a_color.png", "a_overlay.png", "a_labelIds.png", "b_color.png"):
        (tmp_path / name).write_bytes(b"png")
    ok = {"status": "ok", "model": "m", "outputs": ["a_color.png", "a_overlay.png", "a_labelIds.png"]}
    lines = [{"input": "/a.png", "status": "failed", "model": "m", "outputs": []}, {"input": "/a.png", **ok},
             {"input": "/b.png", **ok, "outputs": ["b_color.png", "b_overlay.png", "b_labelIds.png"]}]
    (tmp_path / MANIFEST).write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"input": "/c.png", "st')
    rows = read_manifest(tmp_path)  # the newest line of each input; a line cut short by a kill is skipped
    assert sorted(rows) == ["/a.png", "/b.png"] and rows["/a.png"]["status"] == "ok"
    assert is_done(rows["/a.png"], tmp_path, "m")
    assert not is_done(rows["/a.png"], tmp_path, "another checkpoint or backend")
    assert not is_done(rows["/b.png"], tmp_path, "m")  # two of its outputs are missing
    assert not is_done(None, tmp_path, "m") and read_manifest(tmp_path / "nothing") == {}


def test_the_pool_follows_the_cluster_and_one_that_cannot_fit_is_refused():
    from segkit.cluster.job import check_resources, default_actors

    cpu = ClusterOptions()
    assert default_actors({"CPU": 2.0}, cpu) == 1 and default_actors({"CPU": 64.0}, cpu) == 32
    assert default_actors({"CPU": 64.0}, ClusterOptions(cpus_per_actor=4)) == 8
    assert default_actors({"CPU": 64.0, "GPU": 8.0}, ClusterOptions(gpus_per_actor=2)) == 4
    check_resources({"CPU": 2.0}, cpu, 1)
    with pytest.raises(UserError, match="2 actors x --cpus-per-actor 1 need more than the cluster's 2 CPUs"):
        check_resources({"CPU": 2.0}, cpu, 2)  # no CPU left to read and write: Ray would wait forever
    with pytest.raises(UserError, match="--gpus-per-actor 1 need more than the cluster's 0 GPUs"):
        check_resources({"CPU": 8.0}, ClusterOptions(gpus_per_actor=1), 1)
    with pytest.raises(UserError, match="--batch-size 0 must be at least 1"):
        ClusterOptions(batch_size=0).check()


def test_ray_flags_and_their_mistakes(tool, small_checkpoint, tmp_path, capsys, monkeypatch):
    infer_tool = tool("infer")
    parse = infer_tool.parse_args
    assert (parse(["a.png", "--ray"]).ray, parse(["a.png", "--ray", "auto"]).ray) == ("", "auto")
    assert parse(["a.png", "--ray", "head:6379"]).ray == "head:6379"
    for argv, inputs in ((["--ray", "frames/", "b.png"], ["frames/", "b.png"]), (["a.png", "--ray", "frames/"],
                                                                                 ["a.png", "frames/"])):
        assert (parse(argv).ray, parse(argv).inputs) == ("", inputs)  # the address is optional: frames/ is an input
    with pytest.raises(SystemExit):
        parse(["a.png", "--actors", "2"])
    assert "go with --ray" in capsys.readouterr().err
    city(tmp_path, 1, 64, 96)
    (tmp_path / "clip.mp4").write_bytes(b"")
    photo = str(tmp_path / "street_000.png")
    common = ["--checkpoint", str(small_checkpoint[0]), "--out", str(tmp_path / "out")]
    cases = [([str(tmp_path / "clip.mp4"), "--ray"], "--ray segments photos, not videos"),
             ([photo, "--ray", "--batch-size", "0"], "--batch-size 0 must be at least 1"),
             ([photo, "--ray", "127.0.0.1:1"], "no Ray cluster answers at --ray 127.0.0.1:1"),  # not a wait forever
             ([photo, "--ray"], "--ray needs Ray: pip install 'segkit[cluster]'")]
    for args, message in cases:
        if "needs Ray" in message:
            monkeypatch.setitem(sys.modules, "ray", None)  # a machine without the [cluster] extra
        with pytest.raises(SystemExit) as exit_:
            infer_tool.main(args + common)
        errors = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(errors) == 1 and message in errors[0], errors


# ---- tools/infer.py --ray --------------------------------------------------------------------------------------

def test_ray_outputs_equal_the_single_process_run_and_a_rerun_skips_all(small_checkpoint, tmp_path):
    paths = city(tmp_path / "frames", 6) + city(tmp_path / "frames" / "side", 2, 320, 480, start=6)
    # a list of paths, one per line, relative to the list's folder
    (tmp_path / "frames" / "list.txt").write_text("# the frames\n" + "".join(
        f"{p.relative_to(tmp_path / 'frames').as_posix()}\n" for p in paths) + "\n")
    common = ("frames/list.txt", "--checkpoint", small_checkpoint[0], "--backend", "onnxruntime")
    single = infer(tmp_path, *common, "--out", "single", "--threads", "1")
    assert single.returncode == 0, single.stderr
    result = infer(tmp_path, *common, "--ray", "--out", "cluster", "--batch-size", "3")
    assert result.returncode == 0, result.stderr
    assert "8 segmented, 0 failed, 0 skipped (already done)" in result.stdout and "Traceback" not in result.stderr
    assert "8 photos on Ray: " in result.stdout
    names = sorted(p.relative_to(tmp_path / "single").as_posix() for p in (tmp_path / "single").rglob("*.png"))
    assert len(names) == 24
    same_files(tmp_path / "single", tmp_path / "cluster", names)
    rows = manifest(tmp_path / "cluster")
    assert sorted(row["input"] for row in rows) == sorted(str(p.resolve()) for p in paths)
    assert all(row["status"] == "ok" and len(row["outputs"]) == 3 and row["worker"] for row in rows)
    assert sorted(name for row in rows for name in row["outputs"]) == names
    rerun = infer(tmp_path, *common, "--ray", "--out", "cluster")
    assert rerun.returncode == 0, rerun.stderr
    assert "0 segmented, 0 failed, 8 skipped (already done)" in rerun.stdout
    assert "photos on Ray" not in rerun.stdout  # nothing to do: no Ray started
    assert len(manifest(tmp_path / "cluster")) == 8


def test_corrupt_photos_are_in_the_manifest_and_a_killed_job_resumes(small_checkpoint, tmp_path):
    paths = city(tmp_path / "frames", 6)
    (tmp_path / "frames" / "text.png").write_text("not an image")
    png = paths[0].read_bytes()
    (tmp_path / "frames" / "cut.png").write_bytes(png[: len(png) // 2])
    common = ("frames", "--checkpoint", small_checkpoint[0], "--ray", "--out", "out", "--batch-size", "2")
    result = infer(tmp_path, *common)
    assert result.returncode == 1, result.stderr
    assert "6 segmented, 2 failed, 0 skipped (already done)" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "Traceback" not in result.stderr and "libpng" not in result.stderr
    rows = {Path(row["input"]).name: row for row in manifest(tmp_path / "out")}
    for name in ("text.png", "cut.png"):
        assert rows[name]["status"] == "failed" and rows[name]["outputs"] == []
        assert name in rows[name]["reason"] and "cannot decode" in rows[name]["reason"]
    assert all(rows[p.name]["status"] == "ok" for p in paths)
    # a job killed halfway: the manifest holds the first lines, the last one cut short, and an output is missing
    lines = (tmp_path / "out" / MANIFEST).read_text().splitlines()
    kept = [json.loads(line) for line in lines[:4]]
    (tmp_path / "out" / MANIFEST).write_text("".join(f"{line}\n" for line in lines[:4]) + lines[4][:30])
    done = [row for row in kept if row["status"] == "ok"]
    (tmp_path / "out" / done[0]["outputs"][1]).unlink()
    expected_skips = len(done) - 1
    rerun = infer(tmp_path, *common)
    assert rerun.returncode == 1, rerun.stderr
    assert f"{6 - expected_skips} segmented, 2 failed, {expected_skips} skipped (already done)" in rerun.stdout
    rows = {Path(row["input"]).name: row for row in read_manifest(tmp_path / "out").values()}
    assert all(rows[p.name]["status"] == "ok" for p in paths) and len(rows) == 8
    assert all((tmp_path / "out" / name).is_file() for row in rows.values() for name in row["outputs"])


def test_a_worker_killed_mid_job_is_replaced_and_its_photos_redone(tmp_path):
    """The actors run PyTorch here (--backend torch: about 3x the time of writing a photo's outputs), so the pool is
    the slow stage and the manifest follows its progress: the kill lands with most photos still to segment."""
    torch.manual_seed(0)
    config = Config(model=ModelConfig(backbone="mobilenet_v3_large"))
    save_checkpoint(tmp_path / "large.pt", {"model": build_model(config.model).state_dict(),
                                            "config": config.to_dict(), "iteration": 0})
    paths = city(tmp_path / "frames", 24, 512, 1024)
    command = [sys.executable, str(ROOT / "tools" / "infer.py"), "frames", "--checkpoint", "large.pt", "--backend",
               "torch", "--ray", "--out", "out", "--batch-size", "2",
               "--actors", "1"]  # one actor, on any machine: what it leaves is its replacement's
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:  # files: never a full pipe
        process = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=err)
        try:
            killed, done_before = None, None
            deadline = time.monotonic() + 240
            while killed is None:
                assert process.poll() is None and time.monotonic() < deadline, "the job ended before the kill"
                manifest_file = tmp_path / "out" / MANIFEST
                rows = manifest_file.read_text().count("\n") if manifest_file.exists() else 0
                actors = [pid for pid, line in descendants(process.pid) if any(sign in line for sign in RAY_SIGNS)]
                if rows >= 1 and actors:
                    killed, done_before = actors[0], rows
                    os.kill(killed, signal.SIGKILL)
                time.sleep(0.05)
            process.wait(timeout=240)
        finally:
            if process.poll() is None:
                process.kill()  # a failed test leaves no job behind (Ray's processes follow their driver)
    stdout, stderr = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
    assert process.returncode == 0, stderr
    assert "24 segmented, 0 failed, 0 skipped (already done)" in stdout
    rows = manifest(tmp_path / "out")
    assert len(rows) == 24 and all(row["status"] == "ok" for row in rows)
    workers = {row["worker"].rsplit("/", 1)[1] for row in rows}
    assert done_before < 24 and workers - {str(killed)}, (done_before, workers)  # a new actor did the rest
    for path in paths:
        for suffix in ("_color.png", "_overlay.png", "_labelIds.png"):
            output = tmp_path / "out" / f"{path.stem}{suffix}"
            assert cv2.imread(str(output), cv2.IMREAD_UNCHANGED).shape[:2] == (512, 1024), output
    assert not list((tmp_path / "out").glob(".*.tmp"))


def descendants(root: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below ``root`` (Ray's processes of a local Ray are its driver's)."""
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found += [(child, commands[child]) for child in children]
        frontier += children
    return found


# ---- the Python API on a local Ray ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def test_segmenter_in_a_users_ray_data_pipeline(local_ray, small_checkpoint, tmp_path):
    """The docstring's pipeline: ray.data.read_images -> map_batches(Segmenter, actor pool) -> labels per path."""
    checkpoint = small_checkpoint[0]
    paths = city(tmp_path / "frames", 3, 64, 96) + city(tmp_path / "frames", 2, 96, 64, start=3)
    bundles = pack_bundles(checkpoint, [(64, 96), (96, 64)], backend="onnxruntime", say=lambda line: None)
    dataset = ray.data.read_images(str(tmp_path / "frames"), mode="RGB", include_paths=True)
    dataset = dataset.map_batches(Segmenter, fn_constructor_kwargs={"bundles": bundles}, batch_size=2,
                                  batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1)
    rows = {Path(row["path"]).name: row for row in dataset.iter_rows()}
    reference = RuntimePredictor(checkpoint, "onnxruntime", say=lambda line: None)
    assert sorted(rows) == sorted(p.name for p in paths)
    for path in paths:
        row = rows[path.name]
        expected = reference.predict(cv2.imread(str(path))[:, :, ::-1].copy())
        assert row["error"] == "" and np.array_equal(row["labels"], expected) and row["worker"]


def test_an_actor_that_cannot_load_its_model_stops_the_job_in_one_sentence(local_ray, small_checkpoint, tmp_path):
    from segkit.cluster.job import JobReport, _collect, pipeline

    todo = [{"input": str(path), "name": path.stem} for path in city(tmp_path / "frames", 2, 64, 96)]
    bundles = pack_bundles(small_checkpoint[0], [(64, 96)], "half", say=lambda line: None)
    segmenter = {"bundles": bundles, "resolution": "full"}  # bundles of another resolution: every actor refuses
    dataset = pipeline(ray, todo, tmp_path / "out", segmenter, None, "m", ClusterOptions(batch_size=2), 1)
    with pytest.raises(UserError, match=r"^the Ray job stopped \(the bundle in .* was made for half resolution, "
                                        r"not full; .*\); 0 photos were done"):
        _collect(ray, dataset, todo, tmp_path / "out", "m", JobReport())


def test_the_head_nodes_wait_is_the_network_timeout(monkeypatch):
    """How long --ray HOST:PORT waits for the head node follows SEGKIT_NETWORK_TIMEOUT, as downloads do."""
    waits = []

    def silent(address, timeout):
        waits.append(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", silent)
    monkeypatch.setenv(TIMEOUT_VARIABLE, "7.5")
    with pytest.raises(UserError) as error:
        check_address("head.example:6379")
    assert waits == [7.5] and "nothing arrived for 7.5 s" in str(error.value)
    assert TIMEOUT_VARIABLE in str(error.value) and "--ray head.example:6379" in str(error.value)
    monkeypatch.setenv(TIMEOUT_VARIABLE, "later")
    with pytest.raises(UserError, match=f"{TIMEOUT_VARIABLE}='later' is not a number of seconds"):
        check_address("head.example:6379")
