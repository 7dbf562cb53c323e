"""A bounded load run of the HTTP service (``tools/benchmark.py --serve``): ``tools/serve.py`` started on loopback,
``clients`` concurrent clients sending ``photos`` photos each, every answer checked -- the labels PNG equal to this
process's prediction of the same photo with the same backend -- with ``malformed`` bad requests mixed in (each must
get its 4xx and one sentence). Reported: the photos' p50/p99 latency, the throughput against the single-process rate
(the same photos decoded, predicted and encoded in one process, one after another), the count of 5xx answers (the
goal is 0), and the service's memory (VmRSS) before and after the load.
"""
from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from segkit.cpu import describe as describe_cpu
from segkit.data.images import decode_image
from segkit.errors import UserError

# Bad requests and the status each must get: (name, method, query, content type, body maker, expected status).
MALFORMED = (
    ("not an image", "POST", "", "image/png", lambda photo: b"this is not a photo", 400),
    ("truncated PNG", "POST", "", "image/png", lambda photo: photo[: len(photo) // 2], 400),
    ("too small (16x16)", "POST", "", "image/png",
     lambda photo: cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))[1].tobytes(), 400),
    ("empty body", "POST", "", "image/png", lambda photo: b"", 400),
    ("multipart without 'image'", "POST", "", None, None, 400),
    ("JSON body", "POST", "", "application/json", lambda photo: b'{"image": "street.png"}', 415),
    ("bad query (output=jpeg)", "POST", "?output=jpeg", "image/png", lambda photo: photo, 422),
    ("wrong method (GET)", "GET", "", None, lambda photo: b"", 405),
)


def serve_report(checkpoint: Path, photo_path: Path, backend: str = "auto", threads: int | None = None,
                 clients: int = 8, photos: int = 25, malformed: int = 200, say=print) -> dict:
    """The load run's figures (see the module's docstring); one sentence if the service fails to start."""
    import httpx  # noqa: F401  (the [serve] extra: said before the minutes of the single-process pass)

    from segkit.serve.launch import ServiceProcess
    from segkit.serve.model import ServedModel

    load_average = os.getloadavg()[0]  # before this run adds its own
    data = Path(photo_path).read_bytes()
    photo = decode_image(data, str(photo_path))
    total = clients * photos
    say(f"single process: {total} photos of {photo.shape[0]}x{photo.shape[1]}, one after another")
    model = ServedModel(checkpoint, backend, threads, say)
    try:
        model.warm(photo.shape[:2])
        reference, single_s = single_process(model, data, total)
        chosen = model.backend
    finally:
        model.close()
    threads_args = ["--threads", str(threads)] if threads else []
    with tempfile.TemporaryDirectory(prefix="segkit-serve-bench-") as scratch:
        service = ServiceProcess(["--checkpoint", str(checkpoint), "--backend", chosen, *threads_args,
                                  "--max-queue", str(2 * clients)], Path(scratch) / "serve.log")
        try:
            url = service.wait_until_serving()
            before = service.memory_kib()
            say(f"service at {url}: {clients} clients x {photos} photos, {malformed} malformed requests mixed in")
            run = load_run(url, data, reference, clients, photos, malformed)
            after = service.memory_kib()
            exit_status = service.stop()
        finally:
            service.kill()
    latencies = sorted(run["latencies_s"])
    single_rate = total / single_s
    return {"photo": str(photo_path), "size": list(photo.shape[:2]), "checkpoint": str(checkpoint),
            "backend": chosen, "threads": threads or os.cpu_count(), "cpu": describe_cpu(),
            "load_average": load_average, "clients": clients, "photos_per_client": photos,
            "malformed": malformed, "p50_ms": 1000 * percentile(latencies, 50),
            "p99_ms": 1000 * percentile(latencies, 99),
            "network_p50_ms": percentile(sorted(run["network_ms"]), 50), "service_photos_per_s": total / run["wall_s"],
            "single_photos_per_s": single_rate, "single_ms_per_photo": 1000 * single_s / total,
            "throughput_ratio": total / run["wall_s"] / single_rate, "statuses": run["statuses"],
            "server_errors": sum(n for status, n in run["statuses"].items() if status >= 500),
            "wrong_answers": run["wrong"], "vm_rss_kib": {"before": before["VmRSS"], "after": after["VmRSS"]},
            "vm_hwm_kib": after["VmHWM"], "exit_status": exit_status}


def single_process(model, data: bytes, count: int) -> tuple[np.ndarray, float]:
    """The reference labels, and the seconds ``count`` photos take one after another in this process: decode,
    predict, encode the labels PNG -- what the service does for each request."""
    from segkit.serve.outputs import png_bytes

    start = time.perf_counter()
    for _ in range(count):
        labels, _ = model.submit(decode_image(data), "full").result()
        png_bytes(labels)
    return labels, time.perf_counter() - start


def load_run(url: str, data: bytes, reference: np.ndarray, clients: int, photos: int, malformed: int) -> dict:
    """``clients`` threads, each with its own connection, sending its photos and its share of the malformed
    requests in a shuffled order; every answer checked."""
    import httpx

    statuses, wrong, latencies, network_ms, lock = {}, [], [], [], threading.Lock()

    def client(number: int) -> None:
        bad = [MALFORMED[i % len(MALFORMED)] for i in range(number, malformed, clients)]
        work = ["photo"] * photos + bad
        random.Random(number).shuffle(work)
        with httpx.Client(base_url=url, timeout=600) as session:
            for item in work:
                start = time.perf_counter()
                if item == "photo":
                    answer = session.post("/v1/segment", content=data, headers={"content-type": "image/png"})
                    elapsed = time.perf_counter() - start
                    problem = check_photo_answer(answer, reference)
                else:
                    answer = send_malformed(session, item, data)
                    problem = check_error_answer(answer, item)
                with lock:
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                    if item == "photo":
                        latencies.append(elapsed)
                        network_ms.append(server_timing(answer).get("network", float("nan")))
                    if problem:
                        wrong.append(problem)

    workers = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    if len(latencies) != clients * photos:
        raise UserError(f"only {len(latencies)} of {clients * photos} photo requests finished; a client failed "
                        "(its traceback is above).")
    return {"statuses": dict(sorted(statuses.items())), "wrong": wrong, "latencies_s": latencies,
            "network_ms": network_ms, "wall_s": wall}


def server_timing(answer) -> dict[str, float]:
    """The service's own timings of an answer (its Server-Timing header), in milliseconds."""
    timings = {}
    for entry in answer.headers.get("server-timing", "").split(","):
        name, _, duration = entry.strip().partition(";dur=")
        if duration:
            timings[name] = float(duration)
    return timings


def send_malformed(session, item, photo: bytes):
    name, method, query, content_type, body, _ = item
    if name.startswith("multipart"):
        return session.post(f"/v1/segment{query}", files={"photo": ("street.png", photo, "image/png")})
    headers = {"content-type": content_type} if content_type else {}
    return session.request(method, f"/v1/segment{query}", content=body(photo) or None, headers=headers)


def check_photo_answer(answer, reference: np.ndarray) -> str | None:
    """None where the answer is the reference labels PNG, else what is wrong."""
    if answer.status_code != 200:
        return f"photo: status {answer.status_code} ({answer.text[:200]})"
    labels = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_UNCHANGED)
    if labels is None:
        return "photo: the answer is not a PNG"
    if labels.shape != reference.shape:
        return f"photo: labels of shape {labels.shape}, expected {reference.shape}"
    if not np.array_equal(labels, reference):
        return f"photo: {int((labels != reference).sum())} pixels differ from the single-process prediction"
    return None


def check_error_answer(answer, item) -> str | None:
    name, *_, expected = item
    try:
        message = answer.json().get("error")
    except ValueError:
        message = None
    if answer.status_code != expected or not isinstance(message, str) or not message:
        return f"{name}: status {answer.status_code}, expected {expected} with one sentence ({answer.text[:200]})"
    return None


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q``-th percentile by the nearest rank (p99 of 200 values is the 198th)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(np.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def serve_text(record: dict) -> str:
    memory = record["vm_rss_kib"]
    statuses = ", ".join(f"{status}: {count}" for status, count in record["statuses"].items())
    lines = [
        f"service load run ({record['cpu']}; backend {record['backend']}, {record['threads']} threads; load average "
        f"{record['load_average']:.2f} at the start)",
        f"  {record['clients']} clients x {record['photos_per_client']} photos of {record['size'][0]}x"
        f"{record['size'][1]} + {record['malformed']} malformed requests",
        f"  latency of a photo  p50 {record['p50_ms']:.0f} ms, p99 {record['p99_ms']:.0f} ms (in the service's "
        f"network: p50 {record['network_p50_ms']:.0f} ms)",
        f"  throughput          {record['service_photos_per_s']:.2f} photos/s; single process "
        f"{record['single_photos_per_s']:.2f} photos/s ({record['single_ms_per_photo']:.0f} ms each): "
        f"{record['throughput_ratio']:.2f}x",
        f"  answers             {statuses}; 5xx: {record['server_errors']}; wrong answers: "
        f"{len(record['wrong_answers'])}",
        f"  service memory      VmRSS {memory['before'] / 1024:.0f} MiB before, {memory['after'] / 1024:.0f} MiB "
        f"after (peak {record['vm_hwm_kib'] / 1024:.0f} MiB); exit status after SIGTERM {record['exit_status']}",
    ]
    lines += [f"  wrong: {problem}" for problem in record["wrong_answers"][:10]]
    return "\n".join(lines)
