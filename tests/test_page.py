"""The service's web page in Chromium: a photo chosen, dropped or taken with the camera is segmented once and
blended in the page exactly as the service's own overlay (output=overlay), at the default opacity and after the
slider moved; the legend's shares are the service's; the service's sentence shows on an error; nothing is asked
of another host and nothing is logged as an error.

One service (tools/serve.py on a loopback port, conftest.py's ``launch_service``) and one browser serve the module.
The browser's fake camera (Chromium's --use-fake-device-for-media-stream) films a test pattern.
"""
import base64
import configparser
import fnmatch
import re

import cv2
import httpx
import numpy as np
import pytest

from browser import SCREENSHOT_CHECKPOINT, canvas_pixels, chromium, screenshot, watched_page
from segkit.serve.app import STATIC
from service import png, street, unpng

ROOT = STATIC.parents[2]
TIMEOUT = 60_000  # ms: a photo of a new size waits for its deploy bundle (seconds)
SLIDER_ALPHAS = [step / 100 for step in range(101)]  # the opacity slider: 0..100 %
FAILED_LOAD = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")


@pytest.fixture(scope="module")
def browser():
    with chromium("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream") as launched:
        yield launched


@pytest.fixture(scope="module")
def url(launch_service, small_checkpoint):
    return launch_service(SCREENSHOT_CHECKPOINT or small_checkpoint[0]).url


@pytest.fixture(scope="module")
def model_info(url):
    return httpx.get(f"{url}/v1/model").json()


@pytest.fixture(scope="module")
def photo():
    """The synthetic city's first validation photo at its data set's size (the demo's data/synthetic)."""
    return street(512, 1024)


@pytest.fixture
def page(browser, url):
    """The page opened, its model loaded; checked at the end to have asked only the service."""
    seen = watched_page(browser)
    seen.page.goto(f"{url}/")
    seen.page.wait_for_selector("body[data-state=ready]", timeout=TIMEOUT)
    yield seen
    strangers = [address for address in seen.requests if not address.startswith((f"{url}/", "data:"))]
    seen.page.close()
    assert not strangers, f"the page asked another host: {strangers}"


def service_answer(url, body: bytes, **query) -> httpx.Response:
    return httpx.post(f"{url}/v1/segment", params=query, content=body,
                      headers={"content-type": "application/octet-stream"}, timeout=120)


def service_overlay(url, body: bytes, alpha: float, resolution="full") -> np.ndarray:
    answer = service_answer(url, body, output="overlay", alpha=alpha, resolution=resolution)
    assert answer.status_code == 200, answer.text
    return unpng(answer.content)


def shown(page, alpha: float, state="done") -> np.ndarray:
    """The canvas's RGB once the page drew ``alpha`` (every pixel opaque)."""
    page.wait_for_selector(f"body[data-state={state}]", timeout=TIMEOUT)
    page.wait_for_function("(alpha) => document.querySelector('#overlay').dataset.alpha === String(alpha)", arg=alpha)
    rgba = canvas_pixels(page, "#overlay")
    assert np.all(rgba[:, :, 3] == 255)
    return rgba[:, :, :3]


def legend(page) -> list[tuple[int, float, str]]:
    """The legend's rows, top to bottom: (class index, share, the percentage shown)."""
    return [(int(row.get_attribute("data-index")), float(row.get_attribute("data-share")),
             row.locator(".share").inner_text()) for row in page.locator("#legend li").all()]


def test_a_chosen_photo_is_blended_exactly_as_the_services_overlay_at_any_opacity(page, url, photo, model_info):
    tab = page.page
    names = [c["name"] for c in model_info["classes"]]
    assert tab.locator("#legend .name").all_inner_texts() == names  # before a photo: the classes, in index order
    body = png(photo)
    tab.set_input_files("#choose", files=[{"name": "street.png", "mimeType": "image/png", "buffer": body}])
    np.testing.assert_array_equal(shown(tab, 0.5), service_overlay(url, body, 0.5))  # the service's default alpha

    tab.focus("#opacity")
    for _ in range(15):
        tab.keyboard.press("ArrowRight")
    assert tab.locator("#opacity-value").inner_text() == "65 %"
    np.testing.assert_array_equal(shown(tab, 0.65), service_overlay(url, body, 0.65))

    # the legend: every class of the model, with the service's shares, largest first
    summary = service_answer(url, body, output="json").json()
    shares = {c["index"]: c["share"] for c in summary["classes"]}
    rows = legend(tab)
    assert {index: share for index, share, _ in rows} == shares
    assert [share for _, share, _ in rows] == sorted(shares.values(), reverse=True)
    assert [text for _, share, text in rows if share >= 0.001] == [f"{100 * s:.1f} %" for _, s, _ in rows
                                                                   if s >= 0.001]
    assert sorted(tab.locator("#legend .name").all_inner_texts()) == sorted(names)

    # the model and the timings shown
    model = tab.locator("#model").inner_text()
    assert model_info["checkpoint"] in model and model_info["backend"] in model
    timing = dict(zip(tab.locator("#timing dt").all_inner_texts(), tab.locator("#timing dd").all_inner_texts()))
    assert {"round trip", "in the service", "network", "photo"} <= set(timing)
    assert all(re.fullmatch(r"\d+(\.\d)? ms", timing[name]) for name in ("round trip", "in the service", "network"))
    assert timing["photo"] == "1024×512, full"

    # half resolution: the photo sent again, the overlay the service's at half resolution
    tab.check("input[name=resolution][value=half]")
    tab.wait_for_selector("#timing dd >> text='1024×512, half'", timeout=TIMEOUT)
    np.testing.assert_array_equal(shown(tab, 0.65), service_overlay(url, body, 0.65, "half"))
    tab.check("input[name=resolution][value=full]")
    tab.wait_for_selector("#timing dd >> text='1024×512, full'", timeout=TIMEOUT)
    shown(tab, 0.65)

    tab.hover("#overlay", position={"x": 5, "y": 5})  # the sky's corner: the class under the pointer named
    assert re.fullmatch(r".+ at \(\d+, \d+\)", tab.locator("#pointer").inner_text())
    screenshot(tab, "page.png")
    assert page.console_errors == [] and page.script_errors == []


def test_the_blend_matches_opencv_for_every_pixel_pair_at_every_slider_opacity(page):
    """The page's table of (colour, photo) -> overlay against cv2.addWeighted, as the service calls it, for all
    65536 pairs at each of the slider's 101 opacities: every value the page can draw."""
    tables = page.page.evaluate("""(alphas) => {
        const all = new Uint8Array(alphas.length * 65536);
        alphas.forEach((alpha, k) => all.set(blendTable(alpha), k * 65536));
        let binary = "";
        for (let i = 0; i < all.length; i += 0x8000) {
            binary += String.fromCharCode.apply(null, all.subarray(i, i + 0x8000));
        }
        return btoa(binary);
    }""", SLIDER_ALPHAS)
    tables = np.frombuffer(base64.b64decode(tables), np.uint8).reshape(len(SLIDER_ALPHAS), 256, 256)
    colour = np.repeat(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)  # the table's row
    photo = colour.T.copy()  # its column
    for alpha, table in zip(SLIDER_ALPHAS, tables):
        np.testing.assert_array_equal(table, cv2.addWeighted(colour, alpha, photo, 1 - alpha, 0.0),
                                      err_msg=f"alpha={alpha}")
    assert page.script_errors == []


def test_a_dropped_photo_is_segmented_as_a_chosen_one(page, url):
    tab = page.page
    body = png(street(512, 1024, seed=1))
    tab.evaluate("""(data) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
        document.querySelector("#drop").dispatchEvent(
            new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""", base64.b64encode(body).decode())
    np.testing.assert_array_equal(shown(tab, 0.5), service_overlay(url, body, 0.5))
    assert page.console_errors == [] and page.script_errors == []


def test_a_photo_taken_with_the_camera_is_segmented_as_sent(page, url):
    tab = page.page
    # What the page sends, kept on the way (the browser's network events leave a file's bytes out).
    tab.evaluate("""() => {
        window.sent = [];
        const send = window.fetch;
        window.fetch = (address, options) => {
            if (options && options.body) { window.sent.push(options.body); }
            return send(address, options);
        };
    }""")
    tab.click("#camera-button")
    tab.wait_for_function("document.querySelector('#camera-video').videoWidth > 0", timeout=TIMEOUT)
    tab.click("#camera-take")
    frame = shown(tab, 0.5)
    sent = tab.evaluate("""async () => {
        const body = window.sent[0];
        const read = await new Promise((done) => {
            const reader = new FileReader();
            reader.onload = () => done(reader.result);
            reader.readAsDataURL(body);
        });
        return [window.sent.length, body.type, read.split(",")[1]];
    }""")
    assert sent[:2] == [1, "image/png"]
    body = base64.b64decode(sent[2])
    assert unpng(body).shape[:2] == frame.shape[:2]  # the frame, at its size
    np.testing.assert_array_equal(frame, service_overlay(url, body, 0.5))
    assert not tab.locator("#camera").is_visible()
    assert page.console_errors == [] and page.script_errors == []


def test_a_photo_the_browser_cannot_show_gets_the_classes_colours_alone(page, url):
    # TIFF: the service decodes it (OpenCV), Chromium does not.
    tab = page.page
    body = cv2.imencode(".tiff", street(512, 1024, seed=2)[:, :, ::-1])[1].tobytes()
    tab.set_input_files("#choose", files=[{"name": "street.tiff", "mimeType": "image/tiff", "buffer": body}])
    colours = service_answer(url, body, output="color")
    assert colours.status_code == 200, colours.text
    np.testing.assert_array_equal(shown(tab, 1), unpng(colours.content))
    assert "cannot show street.tiff" in tab.locator("#note").inner_text() and tab.locator("#opacity").is_disabled()
    assert page.console_errors == [] and page.script_errors == []


def test_a_file_that_is_not_an_image_shows_the_services_sentence(page, url, model_info):
    tab = page.page
    tab.set_input_files("#choose", files=[{"name": "notes.txt", "mimeType": "text/plain",
                                           "buffer": b"this is not a photo"}])
    tab.wait_for_selector("body[data-state=error]", timeout=TIMEOUT)
    sentence = service_answer(url, b"this is not a photo").json()["error"]
    assert tab.locator("#error").inner_text() == f"notes.txt: {sentence}"
    assert tab.locator("#overlay").is_hidden() and tab.locator("#legend li[data-share]").count() == 0
    assert tab.locator("#legend li").count() == len(model_info["classes"])  # the classes, without shares
    # the browser logs the 400 answer itself; nothing else is an error
    assert len(page.console_errors) == 1 and FAILED_LOAD.match(page.console_errors[0]), page.console_errors
    assert page.script_errors == []


def test_the_pages_files_are_package_data_and_name_no_other_host():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    patterns = setup["options.package_data"]["segkit.serve"].split()
    files = sorted(p.relative_to(STATIC.parent).as_posix() for p in STATIC.rglob("*") if p.is_file())
    assert files == ["static/index.html", "static/page.css", "static/page.js"]
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in patterns) for name in files)
    for path in STATIC.iterdir():
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")  # the icon's SVG namespace: a name
        assert not re.search(r"https?:|@import|url\(", text), path
