"""The HTTP service as people use it: `python tools/serve.py --checkpoint CKPT` started in a child process on a
loopback port (segkit.serve.launch: --port 0, the address read from its "serving on" line), talked to over HTTP.

One service serves the module (made with --max-queue 1, so that a second request waiting is one too many, and a
1 MB --max-bytes); the tests that hang up, or stop the service, start their own. Slow requests are photos of a
size the service has not seen: their deploy bundle is made first (seconds), as a user's first photo of a new size
would be. $SEGKIT_HOME is the test session's folder (conftest.py); children inherit it.
"""
import hashlib
import re
import socket
import threading
import time
import zlib
from typing import get_args

import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from segkit.checkpoint import quantized_dir
from segkit.data.images import decode_image, read_image
from segkit.deploy.photos import overlay
from segkit.errors import UserError
from segkit.resolutions import RESOLUTIONS
from segkit.runtime.choice import bundled_auto
from segkit.serve.app import STATIC
from service import png, street, unpng

MAX_BYTES = 1_000_000
TIMEOUT = httpx.Timeout(120.0)  # a photo of a new size waits for its bundle


def metrics(url: str) -> dict:
    """{(sample name, labels as sorted tuples): value} of the service's /metrics."""
    text = httpx.get(f"{url}/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(url: str, name: str, **labels) -> float:
    return metrics(url).get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(condition, timeout=60.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def one_sentence(answer: httpx.Response) -> str:
    """The error's sentence, checked to be one: {"error": "... ."} and nothing else."""
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"error"}, body
    message = body["error"]
    assert message.endswith(".") and ". " not in message and "\n" not in message, message
    return message


@pytest.fixture(scope="module")
def checkpoint(small_checkpoint):
    return small_checkpoint[0]


@pytest.fixture(scope="module")
def start_service(launch_service, checkpoint):
    """start(*flags) -> a running ServiceProcess of the checkpoint (conftest.py); killed at the module's end."""
    return lambda *flags: launch_service(checkpoint, *flags)


@pytest.fixture(scope="module")
def service(start_service):
    return start_service("--max-queue", "1", "--max-bytes", str(MAX_BYTES))


@pytest.fixture(scope="module")
def url(service):
    return service.url


@pytest.fixture(scope="module")
def model_info(url):
    return httpx.get(f"{url}/v1/model").json()


@pytest.fixture(scope="module")
def predictor(checkpoint, model_info):
    """The single-process reference: segkit.predict.Predictor with the service's backend."""
    from segkit.predict import Predictor

    return Predictor.from_checkpoint(checkpoint, backend=model_info["backend"])


@pytest.fixture(scope="module")
def photo():
    return street(256, 512)


def segment(url, body: bytes, content_type="image/png", **query) -> httpx.Response:
    return httpx.post(f"{url}/v1/segment", params=query, content=body, headers={"content-type": content_type},
                      timeout=TIMEOUT)


# ---- the model, the health check, the schema ------------------------------------------------------------------

def test_model_endpoint_names_the_checkpoint_its_hash_classes_backend_and_warm_sizes(model_info, checkpoint,
                                                                                     predictor):
    assert model_info["checkpoint"] == str(checkpoint)
    assert model_info["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    runtime = "segkit.runtime" if bundled_auto(quantized_dir(checkpoint)) else "torch"
    assert model_info["runtime"] == runtime and model_info["backend"] == predictor.backend_name
    table = predictor.table
    assert [c["name"] for c in model_info["classes"]] == list(table.names)
    assert [tuple(c["color"]) for c in model_info["classes"]] == list(table.colors)
    assert [c["index"] for c in model_info["classes"]] == list(range(table.num_classes))
    warm = {(s["height"], s["width"], s["resolution"]) for s in model_info["photo_sizes"]}
    assert {(1024, 2048, "full"), (1024, 2048, "half")} <= warm  # warmed before the port opened
    assert model_info["max_queue"] == 1 and model_info["max_bytes"] == MAX_BYTES


def test_healthz(url):
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "queue_depth": 0, "max_queue": 1}


def test_openapi_schema_documents_the_api_and_not_the_page(url):
    schema = httpx.get(f"{url}/openapi.json").json()
    assert {"/v1/segment", "/v1/model", "/healthz", "/metrics"} <= set(schema["paths"])
    assert not [path for path in schema["paths"] if path == "/" or path.startswith("/static")]
    segment_op = schema["paths"]["/v1/segment"]["post"]
    assert {"image/*", "multipart/form-data"} <= set(segment_op["requestBody"]["content"])
    queries = {p["name"]: p["schema"] for p in segment_op["parameters"]}
    assert queries["output"]["enum"] == ["labels", "color", "overlay", "json"]
    assert queries["resolution"]["enum"] == list(RESOLUTIONS)
    assert {"200", "400", "413", "415", "422", "503"} <= set(segment_op["responses"])


def test_the_root_serves_the_page_and_its_files(url):
    # The page's own behaviour is tests/test_page.py's (in a browser); here: what it is made of, over HTTP.
    root = httpx.get(f"{url}/")
    assert root.status_code == 200 and root.headers["content-type"].startswith("text/html")
    linked = re.findall(r'(?:src|href)="([^"]+)"', root.text)
    files = [link for link in linked if not link.startswith("data:")]
    assert sorted(files) == ["static/page.css", "static/page.js"]  # relative: the page may sit behind a proxy
    types = {"static/page.css": "text/css", "static/page.js": "text/javascript"}
    for link in files:
        answer = httpx.get(f"{url}/{link}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(types[link])
        assert answer.content == (STATIC / link.removeprefix("static/")).read_bytes()
    missing = httpx.get(f"{url}/static/nothing.js")
    assert missing.status_code == 404 and "/static/nothing.js" in one_sentence(missing)


def test_constants_kept_without_torch_match_the_library():
    from segkit.serve import schemas

    assert get_args(schemas.Resolution) == tuple(RESOLUTIONS)


# ---- every output kind ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("resolution", list(RESOLUTIONS))
def test_labels_png_is_the_predictors_label_map_exactly(url, photo, predictor, resolution):
    answer = segment(url, png(photo), output="labels", resolution=resolution)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert "network;dur=" in answer.headers["server-timing"]
    labels = unpng(answer.content)
    assert labels.dtype == np.uint8 and labels.shape == photo.shape[:2]  # one channel, the photo's size
    np.testing.assert_array_equal(labels, predictor.predict(photo, resolution))


def test_labels_is_the_default_and_multipart_gives_the_same_answer(url, photo):
    body = segment(url, png(photo), output="labels")
    default = segment(url, png(photo))
    multipart = httpx.post(f"{url}/v1/segment", files={"image": ("street.png", png(photo), "image/png")},
                           timeout=TIMEOUT)
    assert body.status_code == default.status_code == multipart.status_code == 200
    assert body.content == default.content == multipart.content


def test_a_jpeg_without_a_content_type_is_decoded_upright_by_its_exif_orientation(url, predictor, tmp_path):
    stored = np.ascontiguousarray(np.rot90(street(256, 512, seed=1)))  # 512 high, 256 wide as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to view
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    upright = read_image(path)
    assert upright.shape == (256, 512, 3)  # the rule for files: the reference
    answer = httpx.post(f"{url}/v1/segment", content=path.read_bytes(), timeout=TIMEOUT)  # no Content-Type
    assert answer.status_code == 200, answer.text
    np.testing.assert_array_equal(unpng(answer.content), predictor.predict(upright))


def test_color_and_overlay_use_the_checkpoints_colours(url, photo, predictor):
    labels = predictor.predict(photo)
    table = predictor.table
    color = segment(url, png(photo), output="color")
    assert color.status_code == 200 and color.headers["content-type"] == "image/png"
    np.testing.assert_array_equal(unpng(color.content), table.colorize(labels))
    for query, alpha in (({}, 0.5), ({"alpha": 0.2}, 0.2)):
        answer = segment(url, png(photo), output="overlay", **query)
        assert answer.status_code == 200
        np.testing.assert_array_equal(unpng(answer.content), overlay(photo, labels, alpha, table))


def test_json_summary_has_the_size_class_table_shares_and_timings(url, photo, predictor):
    answer = segment(url, png(photo), output="json", resolution="half")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    summary = answer.json()
    labels = predictor.predict(photo, "half")
    assert (summary["width"], summary["height"]) == (512, 256)
    assert summary["resolution"] == "half" and summary["backend"] == predictor.backend_name
    table = predictor.table
    assert [c["name"] for c in summary["classes"]] == list(table.names)
    assert [tuple(c["color"]) for c in summary["classes"]] == list(table.colors)
    counts = np.bincount(labels.ravel(), minlength=table.num_classes)
    assert [c["share"] for c in summary["classes"]] == pytest.approx(list(counts / labels.size))
    timings = summary["timings_ms"]
    assert set(timings) == {"decode", "wait", "network", "encode", "total"}
    assert all(value >= 0 for value in timings.values())
    assert timings["total"] >= timings["decode"] + timings["network"] + timings["encode"]


# ---- bad requests: a status and one sentence --------------------------------------------------------------------

def truncated_png():
    data = png(street(256, 512))
    return data[: len(data) // 2]


BAD_REQUESTS = [  # (id, query, content type, body, status, words the sentence must hold)
    ("not-an-image", {}, "image/png", b"this is not a photo", 400, "cannot decode"),
    ("truncated-png", {}, "image/png", truncated_png(), 400, "cannot decode"),
    ("empty-body", {}, "image/png", b"", 400, "empty"),
    ("too-small", {}, "image/png", png(np.zeros((20, 40, 3), np.uint8)), 400, "40x20"),
    ("sixteen-bit", {}, "image/png", png(np.zeros((64, 64), np.uint16)), 400, "16 bits"),
    ("json-body", {}, "application/json", b'{"image": "street.png"}', 415, "application/json"),
    ("text-body", {}, "text/plain", b"street.png", 415, "text/plain"),
    ("bad-output", {"output": "jpeg"}, "image/png", png(np.zeros((64, 64, 3), np.uint8)), 422, "jpeg"),
    ("bad-resolution", {"resolution": "quarter"}, "image/png", b"", 422, "quarter"),
    ("alpha-over-1", {"output": "overlay", "alpha": 1.5}, "image/png", b"", 422, "1.5"),
    ("alpha-not-a-number", {"alpha": "lots"}, "image/png", b"", 422, "lots"),
]


@pytest.mark.parametrize("query, content_type, body, status, words",
                         [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS])
def test_a_bad_request_gets_its_status_and_one_sentence_naming_the_value(url, query, content_type, body, status,
                                                                         words):
    answer = segment(url, body, content_type, **query)
    assert answer.status_code == status, answer.text
    assert words in one_sentence(answer)


def test_multipart_without_the_image_field_or_with_text_in_it(url, photo):
    wrong_field = httpx.post(f"{url}/v1/segment", files={"photo": ("street.png", png(photo), "image/png")})
    assert wrong_field.status_code == 400 and "'photo'" in one_sentence(wrong_field)
    text = httpx.post(f"{url}/v1/segment", data={"image": "street.png"}, files={"other": ("a.txt", b"x")})
    assert text.status_code == 400 and "holds text" in one_sentence(text)


def test_unknown_paths_and_methods_answer_in_the_same_shape(url):
    missing = httpx.get(f"{url}/v2/segment")
    assert missing.status_code == 404 and "/v2/segment" in one_sentence(missing)
    method = httpx.get(f"{url}/v1/segment")
    assert method.status_code == 405 and "GET" in one_sentence(method)


def test_a_body_over_max_bytes_gets_413(url):
    answer = segment(url, b"\0" * (MAX_BYTES + 1))
    assert answer.status_code == 413 and f"{MAX_BYTES:,}" in one_sentence(answer)


def raw_request(url: str, head: bytes, body_parts=(), timeout=30.0) -> bytes:
    """Send a request's head and body parts on a plain socket and read the answer until the server closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def test_a_declared_length_over_max_bytes_is_refused_before_the_body_is_sent(url):
    # No byte of the body follows: an answer at all shows that the service did not wait to read it.
    answer = raw_request(url, b"POST /v1/segment HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
                              b"Content-Length: 5000000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 ") and b"5,000,000,000 bytes" in answer


def test_a_chunked_body_is_refused_once_it_passes_max_bytes_without_reading_to_its_end(url):
    # A body without a length, sent up to one byte past the limit and never finished (no final chunk).
    chunk = b"\0" * 65536
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (MAX_BYTES // len(chunk)) + [
        b"%x\r\n%s\r\n" % (MAX_BYTES % len(chunk) + 1, b"\0" * (MAX_BYTES % len(chunk) + 1))]
    answer = raw_request(url, b"POST /v1/segment HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n", parts)
    assert answer.startswith(b"HTTP/1.1 413 ")


# ---- bounded work -----------------------------------------------------------------------------------------------

def test_a_request_beyond_max_queue_gets_503_with_retry_after(url):
    slow = png(street(288, 576))  # a new size: its bundle is made first, which takes seconds
    before = metric(url, "segkit_errors_total", kind="queue_full")
    answers = {}
    first = threading.Thread(target=lambda: answers.setdefault("slow", segment(url, slow)))
    first.start()
    wait_for(lambda: metric(url, "segkit_queue_depth") == 1, what="the slow request's admission")
    busy = segment(url, png(street(256, 512)))
    first.join()
    assert busy.status_code == 503 and "--max-queue" in one_sentence(busy)
    assert int(busy.headers["retry-after"]) >= 1
    assert answers["slow"].status_code == 200  # the one admitted is answered
    assert metric(url, "segkit_errors_total", kind="queue_full") == before + 1
    assert segment(url, png(street(256, 512))).status_code == 200  # and the queue takes requests again


def test_metrics_count_requests_by_endpoint_and_status_errors_by_kind_and_inferences(url, photo):
    before = metrics(url)
    for _ in range(2):
        assert segment(url, png(photo)).status_code == 200
    assert segment(url, b"not a photo").status_code == 400
    assert segment(url, png(photo), output="nonsense").status_code == 422
    after = metrics(url)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("segkit_requests_total", endpoint="/v1/segment", status="200") == 2
    assert grew("segkit_requests_total", endpoint="/v1/segment", status="400") == 1
    assert grew("segkit_requests_total", endpoint="/v1/segment", status="422") == 1
    assert grew("segkit_errors_total", kind="not_image") == 1
    assert grew("segkit_errors_total", kind="bad_query") == 1
    assert grew("segkit_request_seconds_count", endpoint="/v1/segment") == 4
    assert grew("segkit_inference_seconds_count") == 2  # the bad requests ran nothing
    assert after[("segkit_queue_depth", ())] == 0
    assert grew("segkit_requests_total", endpoint="/metrics", status="200") == 1  # the first scrape


def test_a_client_that_hangs_up_while_queued_costs_no_inference(start_service):
    service = start_service("--max-queue", "4")
    url = service.url
    if httpx.get(f"{url}/v1/model").json()["runtime"] == "segkit.runtime":
        with open(f"/proc/{service.pid}/maps") as maps:  # bundles cached: no PyTorch until a new size needs one
            assert "libtorch" not in maps.read()
    inferences = metric(url, "segkit_inference_seconds_count")
    slow = threading.Thread(target=lambda: segment(url, png(street(320, 640))))
    slow.start()
    wait_for(lambda: metric(url, "segkit_queue_depth") == 1, what="the slow request's admission")
    quitter = png(street(256, 512))
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nContent-Length: %d"
                     b"\r\n\r\n%s" % (len(quitter), quitter))
        wait_for(lambda: metric(url, "segkit_queue_depth") == 2, what="the second request's admission")
    slow.join()  # the socket closed while the slow request ran
    wait_for(lambda: metric(url, "segkit_queue_depth") == 0, what="the queue emptying")
    assert metric(url, "segkit_errors_total", kind="client_gone") == 1
    assert metric(url, "segkit_inference_seconds_count") == inferences + 1  # the slow one only


def test_sigterm_finishes_the_requests_in_flight_refuses_new_ones_and_exits_0(start_service):
    service = start_service("--max-queue", "4")
    url = service.url
    slow = png(street(352, 704))  # a new size: the first of the three makes its bundle
    answers = []
    clients = [threading.Thread(target=lambda: answers.append(segment(url, slow))) for _ in range(3)]
    for client in clients:
        client.start()
    wait_for(lambda: metric(url, "segkit_queue_depth") == 3, what="three requests in flight")
    service.process.terminate()  # SIGTERM

    def refused():
        try:
            httpx.get(f"{url}/healthz", timeout=2)
        except httpx.ConnectError:
            return True
        except httpx.TransportError:  # connected just before the port closed, then closed unanswered: try again
            return False
        return False

    wait_for(refused, timeout=10, what="new connections refused")
    assert service.process.wait(timeout=120) == 0, service.output()
    for client in clients:
        client.join()
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert len({answer.content for answer in answers}) == 1


def test_the_listening_socket_gives_connections_tcp_nodelay():
    # Without TCP_NODELAY, Nagle's algorithm holds each answer's body until the client's delayed ACK: 40 ms a request.
    import asyncio

    from segkit.serve.server import listening_socket

    async def accepted_nodelay() -> int:
        sock = listening_socket("127.0.0.1", 0)
        flags = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                flags.set_result(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP,
                                                                               socket.TCP_NODELAY))

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(flags, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0


def test_the_torch_backend_is_served_by_the_pytorch_predictor(start_service, checkpoint, photo):
    # The path a GPU or int8 graphs take under auto: segkit.predict.Predictor instead of the runtime.
    from segkit.predict import Predictor

    service = start_service("--backend", "torch")
    info = httpx.get(f"{service.url}/v1/model").json()
    assert (info["runtime"], info["backend"]) == ("torch", "torch")
    answer = segment(service.url, png(photo), output="labels")
    assert answer.status_code == 200, answer.text
    np.testing.assert_array_equal(unpng(answer.content),
                                  Predictor.from_checkpoint(checkpoint, backend="torch").predict(photo))
    assert service.stop() == 0


# ---- the command line ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, words", [(["--max-queue", "0"], "--max-queue 0"),
                                          (["--port", "70000"], "--port 70000"),
                                          (["--checkpoint", "/nonexistent/best.pt"], "/nonexistent/best.pt")])
def test_the_tools_user_errors_are_one_line_and_exit_2(tool, capsys, checkpoint, flags, words):
    argv = flags if "--checkpoint" in flags else ["--checkpoint", str(checkpoint), *flags]
    with pytest.raises(SystemExit) as exit_:
        tool("serve").main(argv)
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and words in error and "\n" not in error


def test_the_service_modules_import_no_torch():
    import subprocess
    import sys

    code = ("import sys\nimport segkit.serve.app, segkit.serve.model, segkit.serve.server, segkit.serve.launch\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- decoding an upload ---------------------------------------------------------------------------------------

def test_decode_image_reads_bytes_as_read_image_reads_files(tmp_path):
    photo = street(64, 96)
    for name, image in {"rgb.png": photo, "gray.png": photo[:, :, 0],
                        "rgba.png": np.dstack([photo, photo[:, :, :1]])}.items():
        (tmp_path / name).write_bytes(png(image))
    exif = Image.Exif()
    exif[0x0112] = 8  # turn 90 degrees counter-clockwise to view
    Image.fromarray(photo).save(tmp_path / "turned.jpg", exif=exif)
    for path in tmp_path.iterdir():
        np.testing.assert_array_equal(decode_image(path.read_bytes()), read_image(path))
    assert decode_image((tmp_path / "turned.jpg").read_bytes()).shape == (96, 64, 3)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG file whose header claims ``width`` x ``height`` (8-bit RGB) and whose pixel data is empty."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decode_image_errors_name_the_input_and_refuse_too_many_pixels_before_decoding():
    with pytest.raises(UserError, match="the upload is empty"):
        decode_image(b"", "the upload")
    with pytest.raises(UserError, match="cannot decode the upload"):
        decode_image(b"GIF89a nonsense", "the upload")
    # Refused from the header alone: decoding would fail (there are no pixels), and the sentence would differ.
    with pytest.raises(UserError, match="the upload is 5000x4000 pixels, more than the 1,000,000 allowed"):
        decode_image(png_claiming(5000, 4000), "the upload", max_pixels=1_000_000)
    with pytest.raises(UserError, match="the upload has more than [0-9,]+ pixels"):
        decode_image(png_claiming(100_000, 100_000), "the upload")


def test_the_predictors_own_sentence_reaches_the_client(checkpoint, photo):
    """A request the predictor refuses in a sentence (a new photo size whose bundle needs PyTorch, not installed
    there) is answered with that sentence and counted as the model's error, not as an anonymous failure."""
    from fastapi.testclient import TestClient

    from segkit.serve.app import create_app
    from segkit.serve.model import ServedModel

    model = ServedModel(checkpoint, say=lambda line: None)
    sentence = "making a deploy bundle needs PyTorch, which is not installed here; install segkit's [torch] extra."

    def refuse(image, resolution):
        raise UserError(sentence)

    model.predictor.predict = refuse
    try:
        with TestClient(create_app(model)) as client:
            answer = client.post("/v1/segment", content=png(photo), headers={"content-type": "image/png"})
            assert answer.status_code == 500
            assert answer.json() == {"error": f"the service cannot segment this photo: {sentence}"}
            kinds = {sample.labels.get("kind"): sample.value for family in
                     text_string_to_metric_families(client.get("/metrics").text) for sample in family.samples
                     if sample.name.endswith("errors_total")}
            assert kinds.get("model") == 1
    finally:
        model.close()
