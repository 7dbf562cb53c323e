"""tools/eval.py --report's page in Chromium, opened from its folder (file://) as a user opens it: every picture
loads, nothing is asked of another place, no error is logged, and the table of every image sorts by a click on a
column's header.

The report is made once for the module, as tests/test_report_html.py makes it: a tiny synthetic city whose images
score out of order, the random-weight checkpoint (for the README's screenshot: the screenshot checkpoint on the
city at its data set's size, tests/browser.py).
"""
import importlib.util
from pathlib import Path

import pytest

from browser import SCREENSHOT_CHECKPOINT, chromium, screenshot, watched_page
from segkit.data.synthetic import make_synthetic

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def report(tmp_path_factory, small_checkpoint):
    """The report's index.html: 5 images at full and half resolution, the worst 2 pictured."""
    root = tmp_path_factory.mktemp("report")
    height, width = (512, 1024) if SCREENSHOT_CHECKPOINT else (64, 128)
    make_synthetic(root / "city", train=0, val=5, height=height, width=width, seed=2)
    spec = importlib.util.spec_from_file_location("segkit_tools_eval", ROOT / "tools" / "eval.py")
    eval_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(eval_tool)
    eval_tool.main(["--checkpoint", str(SCREENSHOT_CHECKPOINT or small_checkpoint[0]), "--data-root",
                    str(root / "city"), "--report", str(root / "report"), "--report-worst", "2", "--workers", "0",
                    "--device", "cpu"])
    return root / "report" / "index.html"


@pytest.fixture
def page(browser, report):
    seen = watched_page(browser)
    seen.page.goto(report.as_uri())  # returns once the page and its pictures loaded
    yield seen
    seen.page.close()


def test_the_report_opens_offline_with_every_picture_loaded_and_no_error(page, report):
    tab = page.page
    pictures = tab.evaluate("Array.from(document.images, (img) => [img.getAttribute('src'), "
                            "img.complete && img.naturalWidth > 0])")
    sources = {source for source, _ in pictures}
    assert len(sources) == len(list((report.parent / "images").iterdir()))  # confusion plots and the worst 2
    assert [source for source, loaded in pictures if not loaded] == []
    folder = report.parent.as_uri()
    assert [address for address in page.requests if not address.startswith(f"{folder}/")] == []
    assert page.console_errors == [] and page.script_errors == []
    screenshot(tab, "report.png")


def column(tab, number: int) -> list[str]:
    """The data-value of column ``number`` (0: the image's position) in the table's rows, top to bottom."""
    return tab.eval_on_selector_all("#images tbody tr", "(rows, n) => rows.map((row) => row.cells[n].dataset.value)",
                                    number)


def test_the_table_of_every_image_sorts_by_miou_and_back(page):
    tab = page.page
    positions = [int(value) for value in column(tab, 0)]
    assert positions == sorted(positions) and len(positions) == 5  # data set order at first
    header = tab.locator("#images th[data-resolution=full]")
    full = [th.get_attribute("data-resolution") for th in tab.locator("#images th").all()].index("full")
    scores = [float(value) for value in column(tab, full)]
    assert len(set(scores)) > 1 and scores != sorted(scores)  # the order will change

    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert [float(value) for value in column(tab, full)] == sorted(scores)
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert [float(value) for value in column(tab, full)] == sorted(scores, reverse=True)
    tab.locator("#images th").first.click()  # by position: the first order again
    assert [int(value) for value in column(tab, 0)] == positions
    assert page.console_errors == [] and page.script_errors == []
