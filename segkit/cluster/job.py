"""The driver of ``segkit.cluster`` (``tools/infer.py --ray``): which photos are still to do (the manifest), the
bundles of their sizes, Ray started or joined, the three stages as a Ray Data dataset, and the manifest appended as
results arrive. Ray is imported here only, when a job runs."""
from __future__ import annotations

import json
import math
import os
import re
import socket
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from segkit.cluster.stages import Segmenter, pack_bundles, read_photos, write_results
from segkit.data.images import image_size
from segkit.deploy.photos import OUTPUT_SUFFIXES
from segkit.errors import UserError, quiet_native_stderr
from segkit.geometry import MIN_PHOTO_SIZE
from segkit.hub import network_timeout, timed_out, timeout_hint

MANIFEST = "manifest.jsonl"
MAX_SIZES = 16  # photo sizes in one job: one bundle each, as many as the bundle cache keeps
TASK_RETRIES = 3  # a batch whose actor died is run again this many times, then its photos are recorded as failed
# An actor's process is replaced this many times in its life: it outlives two batches that kill it on every try (a
# pool whose actors are all spent loses the batches still to come, which are then recorded as failed).
ACTOR_RESTARTS = 2 * (TASK_RETRIES + 1)
MAX_BLOCKS = 4096  # the paths go to Ray in at most this many blocks: Ray Data's bookkeeping grows with their count
PROBE_THREADS = 16  # headers read at once by the driver (file-system latency, not CPU)


@dataclass
class ClusterOptions:
    """How the job uses the cluster (``tools/infer.py --ray`` flags). ``address``: None starts a local Ray, "auto"
    joins the running cluster, else a cluster's address, as ``ray.init`` takes it; ``actors``: the pool's size
    (default: ``default_actors``); ``threads``: each actor's runtime threads (default: its CPUs)."""

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    batch_size: int = 8
    threads: int | None = None

    def check(self) -> None:
        if self.batch_size < 1:
            raise UserError(f"--batch-size {self.batch_size} must be at least 1.")
        if self.actors is not None and self.actors < 1:
            raise UserError(f"--actors {self.actors} must be at least 1.")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor < 0:
            raise UserError(f"--cpus-per-actor {self.cpus_per_actor:g} must be above 0 and --gpus-per-actor "
                            f"{self.gpus_per_actor:g} at least 0.")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads {self.threads} must be at least 1.")


@dataclass
class JobReport:
    segmented: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    actors: int = 0

    def summary(self) -> str:
        line = f"{self.segmented} segmented, {self.failed} failed, {self.skipped} skipped (already done)"
        if self.actors and self.seconds > 0:
            line += (f"; {(self.segmented + self.failed) / self.seconds:.2f} images/s over {self.seconds:.1f} s on "
                     f"{self.actors} actor{'s' if self.actors > 1 else ''}")
        return line


# ---- resuming --------------------------------------------------------------------------------------------------

def read_manifest(out_dir: Path) -> dict[str, dict]:
    """The newest line of each input in ``out_dir/manifest.jsonl`` ({} when there is none); a line cut short by a
    killed driver is skipped."""
    rows = {}
    try:
        with open(Path(out_dir) / MANIFEST) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and isinstance(row.get("input"), str):
                    rows[row["input"]] = row
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {Path(out_dir) / MANIFEST} ({exc}); move it away to start the job afresh.") \
            from None
    return rows


def is_done(row: dict | None, out_dir: Path, model: str) -> bool:
    """Whether a manifest line says its photo is done by ``model``, and its outputs are all there."""
    return (row is not None and row.get("status") == "ok" and row.get("model") == model
            and len(row.get("outputs") or ()) == len(OUTPUT_SUFFIXES)
            and all((out_dir / name).is_file() for name in row["outputs"]))


# ---- the driver ------------------------------------------------------------------------------------------------

def run_job(paths: list[Path], names: list[str], out_dir: Path, checkpoint: Path, backend: str, resolution: str,
            options: ClusterOptions, quantized: Path | None = None, say=print) -> JobReport:
    """``tools/infer.py --ray``: the photos ``paths`` (output names ``names``) segmented on a Ray cluster into
    ``out_dir``, skipping those the manifest says are done; each failure is a line on stderr."""
    from segkit.runtime.bundle import checkpoint_sha256

    options.check()
    out_dir = Path(os.path.abspath(out_dir))
    bundled = actor_backend(backend, quantized, options.gpus_per_actor)
    model = f"{checkpoint_sha256(checkpoint)[:16]} {resolution} {bundled or backend}"
    previous = read_manifest(out_dir)
    todo = []
    for path, name in zip(paths, names):
        absolute = os.path.abspath(path)
        if not is_done(previous.get(absolute), out_dir, model):
            todo.append({"input": absolute, "name": name})
    report = JobReport(skipped=len(paths) - len(todo))
    if not todo:
        return report  # nothing to do: no Ray
    ray = import_ray()  # before any work, so that a machine without it hears so at once
    check_address(options.address)
    if bundled:
        sizes = photo_sizes([Path(row["input"]) for row in todo])
        if len(sizes) > MAX_SIZES:
            raise UserError(f"the photos come in {len(sizes)} sizes; --ray makes a deploy bundle for each, at most "
                            f"{MAX_SIZES}: resize them, or run the sizes as separate jobs.")
        bundles = pack_bundles(checkpoint, sizes, resolution, bundled, say)
        segmenter = {"bundles": bundles, "resolution": resolution, "threads": options.threads}
        table = bundle_table(bundles[0]) if bundles else None
    else:
        from segkit.checkpoint import checkpoint_classes, load_checkpoint  # PyTorch: this mode only

        device = "cuda" if options.gpus_per_actor > 0 else "cpu"
        segmenter = {"checkpoint": str(Path(checkpoint).resolve()), "resolution": resolution, "backend": backend,
                     "device": device, "threads": options.threads,
                     "quantized": str(Path(quantized).resolve()) if quantized is not None else None}
        table = checkpoint_classes(load_checkpoint(checkpoint))
    connect(ray, options.address)
    try:
        report.actors = options.actors or default_actors(ray.cluster_resources(), options)
        check_resources(ray.cluster_resources(), options, report.actors)
        gpus = f" and {options.gpus_per_actor:g} GPUs" if options.gpus_per_actor else ""
        say(f"{len(todo)} photos on Ray: {report.actors} actor{'s' if report.actors > 1 else ''} of "
            f"{options.cpus_per_actor:g} CPUs{gpus}, batches of "
            f"{options.batch_size}, backend {bundled or backend}, resolution {resolution}, writing to {out_dir}"
            + (f" ({report.skipped} already done)" if report.skipped else ""))
        dataset = pipeline(ray, todo, out_dir, segmenter, table, model, options, report.actors)
        start = time.perf_counter()
        try:
            _collect(ray, dataset, todo, out_dir, model, report)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM where the caller made it one
            say(f"interrupted: {report.summary()}; the same command goes on from here")
            raise
        report.seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
    return report


def actor_backend(backend: str, quantized: Path | None, gpus_per_actor: float) -> str | None:
    """The bundled backend the actors run (``segkit.runtime.choice.BUNDLED``), or None where they run the PyTorch
    Predictor: GPUs, ``torch``, int8 graphs (and ``auto`` where the checkpoint's int8 graphs passed their gate).
    ``auto`` is decided by the driver's CPU: pass --backend for workers of another kind."""
    from segkit.runtime.choice import BUNDLED, default_cpu_backend

    if gpus_per_actor > 0:
        return None
    if backend == "auto":
        passed = quantized is not None and (Path(quantized) / "quantized.json").is_file()
        return None if passed else default_cpu_backend()
    return backend if backend in BUNDLED else None


def photo_sizes(paths: list[Path]) -> list[tuple[int, int]]:
    """The (height, width) sizes present among the photos, upright, from their headers (read by a few threads: on
    a network file system the time is latency); files that do not read, or are smaller than segkit takes, add none
    (the job records why)."""
    def size(path):
        try:
            return image_size(path)
        except (UserError, OSError):
            return None

    with quiet_native_stderr(), ThreadPoolExecutor(PROBE_THREADS) as pool:  # decoders' own lines for bad files
        found = set(pool.map(size, paths))
    return sorted(s for s in found if s is not None and min(s) >= MIN_PHOTO_SIZE)


def bundle_table(packed: dict):
    from segkit.data.classes import ClassTable

    return ClassTable.from_dict(json.loads(packed["files"]["bundle.json"])["classes"], "the bundle's class table")


def import_ray():
    """The ``ray`` module with Ray Data, or one sentence saying how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage statistics sent home (read as Ray starts)
    try:
        import ray
        import ray.data
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'segkit[cluster]'.") from None
    return ray


def check_address(address: str | None) -> None:
    """One sentence where nothing answers at a cluster's HOST:PORT: ``ray.init`` would wait there for good."""
    if not address or address == "auto":
        return
    host, _, port = address.rpartition(":")
    timeout = network_timeout()
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        reason = timeout_hint(timeout) if timed_out(exc) else exc
        raise UserError(f"no Ray cluster answers at --ray {address} ({reason}); start its head node there (ray start "
                        "--head --port=PORT) or check the address.") from None


def connect(ray, address: str | None) -> None:
    """``ray.init``: a new local Ray (``address`` None) or the cluster at ``address`` ("auto": the one this machine
    is in, as ``ray.init`` finds it). Quiet: no usage statistics, no dashboard, no progress bars, and only Ray's
    warnings and errors on the console (the workers' logs stay in Ray's session folder on each node)."""
    import logging
    import signal

    settings = {"logging_level": logging.ERROR, "log_to_driver": False}
    on_term = signal.getsignal(signal.SIGTERM)
    try:
        if address:
            ray.init(address=address, **settings)
        else:  # "local": a new Ray of this machine's cores, even where RAY_ADDRESS or `ray start` names another
            ray.init(address="local", include_dashboard=False, **settings)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"--ray {address}" if address else "a local Ray"
        raise UserError(f"cannot start or join {where} ({_first_line(exc)}); for a cluster, run `ray start --head` "
                        "on its head node first, or leave out the address for a local Ray.") from None
    if callable(on_term):  # Ray's core worker takes SIGTERM for itself; the caller's handler stops the job cleanly
        signal.signal(signal.SIGTERM, on_term)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver's own bar counts photos
    context.max_errored_blocks = -1  # a batch that fails after its retries is recorded as failed photos, not fatal
    context.max_consecutive_actor_init_deaths = TASK_RETRIES  # an actor killed while loading the model is replaced
    for handler in logging.getLogger("ray.data").handlers:
        if handler.get_name() == "console":  # Ray Data's INFO lines (execution plan, log paths) stay in its log file
            handler.setLevel(logging.WARNING)
            handler.addFilter(lambda record: not record.getMessage().startswith("Progress bars disabled"))


def default_actors(resources: dict, options: ClusterOptions) -> int:
    """The pool's size from the cluster's resources: one actor per ``gpus_per_actor`` GPUs, else per
    ``cpus_per_actor`` of half the CPUs -- the other half reads and writes, which for a 1024x2048 photo (decoding,
    three PNGs encoded) costs about what the network does (BENCHMARKS.md)."""
    if options.gpus_per_actor > 0:
        return max(1, int(resources.get("GPU", 0) // options.gpus_per_actor))
    return max(1, int(resources.get("CPU", 1) / 2 // options.cpus_per_actor))


def check_resources(resources: dict, options: ClusterOptions, actors: int) -> None:
    """One sentence where the pool cannot start on this cluster (Ray would wait for resources forever)."""
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    if actors * options.cpus_per_actor >= cpus:
        raise UserError(f"{actors} actors x --cpus-per-actor {options.cpus_per_actor:g} need more than the cluster's "
                        f"{cpus:g} CPUs (at least one is left for reading and writing); lower --actors or "
                        "--cpus-per-actor.")
    if actors * options.gpus_per_actor > gpus:
        raise UserError(f"{actors} actors x --gpus-per-actor {options.gpus_per_actor:g} need more than the "
                        f"cluster's {gpus:g} GPUs; lower --actors or --gpus-per-actor.")


def pipeline(ray, todo: list[dict], out_dir: Path, segmenter: dict, table, model: str, options: ClusterOptions,
             actors: int):
    """The three stages as a Ray Data dataset of manifest lines. The actors' remote settings (bounded restarts)
    differ from the tasks', so Ray keeps the stages apart (no fusion): decoding and writing run beside the network,
    in their own processes."""
    blocks = min(MAX_BLOCKS, math.ceil(len(todo) / options.batch_size))
    dataset = ray.data.from_items(todo, override_num_blocks=blocks)
    dataset = dataset.map_batches(read_photos, batch_size=options.batch_size, batch_format="numpy", num_cpus=1)
    with warnings.catch_warnings():
        # Bounded restarts and retries go as ray_remote_args, which Ray 2.60 deprecates without a named parameter
        # for them yet (unbounded is its default: a photo that kills its worker every time would never end).
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = dataset.map_batches(Segmenter, fn_constructor_kwargs=segmenter, batch_size=options.batch_size,
                                      batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
                                      num_cpus=options.cpus_per_actor, num_gpus=options.gpus_per_actor or None,
                                      max_restarts=ACTOR_RESTARTS, max_task_retries=TASK_RETRIES)
    return dataset.map_batches(write_results, fn_kwargs={"out_dir": str(out_dir), "table": table, "model": model},
                               batch_size=options.batch_size, batch_format="numpy", num_cpus=1)


def _collect(ray, dataset, todo: list[dict], out_dir: Path, model: str, report: JobReport) -> None:
    """Append each result to the manifest as it arrives (flushed and fsynced per batch, so a kill keeps what was
    done), count it, and record the photos whose batch never came back (its workers died on every retry)."""
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    seen = set()
    with open(manifest, "a") as log, tqdm(total=len(todo), unit="image", disable=len(todo) < 2,
                                           file=sys.stderr) as bar:
        if log.tell() and not _ends_with_newline(manifest):
            log.write("\n")  # a line cut short by a killed driver stays alone on its line
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for status, record in zip(batch["status"], batch["record"]):
                    log.write(f"{record}\n")
                    row = json.loads(record)
                    seen.add(row["input"])
                    if status == "ok":
                        report.segmented += 1
                    else:
                        report.failed += 1
                        tqdm.write(f"error: {row['reason']}", file=sys.stderr)
                log.flush()
                os.fsync(log.fileno())
                bar.update(len(batch["status"]))
        except ray.exceptions.RayError as exc:
            raise UserError(f"the Ray job stopped ({_ray_reason(exc)}); {report.segmented} photos were done and are "
                            f"kept in {manifest}: run the same command again to go on.") from None
        lost = [row["input"] for row in todo if row["input"] not in seen]
        for path in lost:
            reason = (f"{path}: no result: the workers of its batch died {TASK_RETRIES + 1} times (Ray's logs on "
                      "the workers say why)")
            log.write(json.dumps({"input": path, "status": "failed", "outputs": [], "model": model,
                                  "reason": reason}) + "\n")
            tqdm.write(f"error: {reason}", file=sys.stderr)
        report.failed += len(lost)
        log.flush()
        os.fsync(log.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _ray_reason(exc: BaseException) -> str:
    """The user-facing cause of a Ray error: the sentence of a UserError raised on a worker (e.g. a runtime not
    installed there, which Ray passes on as the text of the worker's traceback), else the error's first line."""
    marker = f"{UserError.__module__}.{UserError.__name__}: "
    text = str(exc)
    if marker in text:
        return _ANSI.sub("", text.rsplit(marker, 1)[1].splitlines()[0])
    return _first_line(exc)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the colours of Ray's messages


def _first_line(exc: BaseException) -> str:
    lines = [_ANSI.sub("", line) for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__
