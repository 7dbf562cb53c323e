"""What the browser tests share: Chromium (Debian's ``chromium``, driven by playwright's sync API), pages watched
for console errors, script errors and the URLs they ask for, and the README's screenshots.

Screenshots are written only where ``SEGKIT_SCREENSHOTS`` names a folder; ``SEGKIT_SCREENSHOT_CHECKPOINT`` then
names a trained checkpoint to show (e.g. ``runs/demo/best.pt``) in place of the tests' random-weight one:

    SEGKIT_SCREENSHOTS=docs/screenshots SEGKIT_SCREENSHOT_CHECKPOINT=runs/demo/best.pt \\
        pytest tests/test_page.py tests/test_report_page.py
"""
import base64
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

SCREENSHOTS = os.environ.get("SEGKIT_SCREENSHOTS")
SCREENSHOT_CHECKPOINT = os.environ.get("SEGKIT_SCREENSHOT_CHECKPOINT")
VIEWPORT = {"width": 1120, "height": 720}


@contextmanager
def chromium(*args: str):
    """A headless Chromium (``args``: its command-line switches), closed on exit; the test is skipped, saying what
    is missing, without playwright or chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the browser tests need the playwright package (pip install -e '.[test]')")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("the browser tests need Chromium as `chromium` on the PATH (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(args))
        try:
            yield browser
        finally:
            browser.close()


def watched_page(browser):
    """A new page and what it does: ``console_errors`` and ``script_errors`` (uncaught), the ``requests``' URLs."""
    page = browser.new_page(viewport=VIEWPORT)
    seen = SimpleNamespace(page=page, console_errors=[], script_errors=[], requests=[])
    page.on("console", lambda message: message.type == "error" and seen.console_errors.append(message.text))
    page.on("pageerror", lambda error: seen.script_errors.append(str(error)))
    page.on("request", lambda request: seen.requests.append(request.url))
    return seen


def canvas_pixels(page, selector: str) -> np.ndarray:
    """A canvas's pixels, (H, W, 4) RGBA uint8, as its 2D context's getImageData reads them."""
    width, height, data = page.evaluate("""(selector) => {
        const canvas = document.querySelector(selector);
        const bytes = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let binary = "";
        for (let i = 0; i < bytes.length; i += 0x8000) {
            binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        }
        return [canvas.width, canvas.height, btoa(binary)];
    }""", selector)
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width, 4)


def screenshot(page, name: str) -> Path | None:
    """``page`` as ``$SEGKIT_SCREENSHOTS/name`` (the viewport), where that variable names a folder."""
    if not SCREENSHOTS:
        return None
    path = Path(SCREENSHOTS) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    return path
