"""check --html in a real browser: headless Chromium (Debian's package ``chromium``; .ci/run
installs it) loads a mutant's report at S = 7 and at S = 14 with no console message, and the
screenshot's grid and heatmaps are drawn, not blank."""

from __future__ import annotations

import shutil
import subprocess

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tests.reports.html_pages import failure_report
from yolov1_loss.conformance.reports.html.page import write_html

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs a headless browser: Debian's package chromium (apt-get install -y chromium)"
)
WIDTH, HEIGHT = 1280, 2600  # tall enough for the first failure's grid and heatmaps
OBJECT_CELL = np.array([255, 242, 204]) / 255  # svg.grid's shading of a cell that holds an object


def screenshot(url: str, png, profile) -> str:
    """Chromium's screenshot of ``url`` into ``png``; returns what it logged (console messages
    included), with no network, no profile of the user's."""
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert png.exists(), done.stderr[-2000:]
    return done.stderr


def console_messages(log: str) -> list[str]:
    """The page's console messages in Chromium's log (errors, uncaught exceptions, any)."""
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_a_console_error_is_caught(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><p>x</p><script>notDefined();</script>")
    log = screenshot(page.as_uri(), tmp_path / "broken.png", tmp_path / "profile")
    assert console_messages(log)


@pytest.mark.parametrize("S", [7, 14])
def test_the_report_renders_its_grid_and_heatmaps(tmp_path, S):
    report, example = failure_report("class_loss_on_empty_cells", S=S, prop="gradients_match_oracle")
    page = tmp_path / "report.html"
    write_html(report, page)
    png = tmp_path / "report.png"
    log = screenshot(page.as_uri(), png, tmp_path / "profile")
    assert console_messages(log) == []
    pixels = plt.imread(png)[..., :3]
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    shaded = np.abs(pixels - OBJECT_CELL).max(axis=-1) < 0.02
    shaded[shaded.sum(axis=1) < 20] = False  # a row of grid cells, not the key's 12-pixel swatch
    rows, columns = np.nonzero(shaded)
    assert rows.size, "no cell holding an object is drawn"
    top, bottom, left, right = rows.min(), rows.max(), columns.min(), columns.max()
    side = 420 * (S - 1) / S  # svg.grid's width, less a cell: the object cells span at least that
    assert bottom - top > 0.5 * side and right - left > 0.5 * side, (top, bottom, left, right)
    grid = pixels[top : bottom + 1, left : right + 1]
    assert (np.abs(grid - 1).sum(axis=-1) > 0.05).mean() > 0.3, "the grid area is blank"
    below = pixels[bottom:]
    red = (below[..., 0] > 0.6) & (below[..., 1] < 0.6) & (below[..., 2] < 0.6)
    assert red.sum() > 40 * 40, "no heatmap below the grid shows a difference"
