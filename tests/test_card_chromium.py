"""The HTML card as a browser shows it: headless Chromium takes a screenshot, the test reads its pixels.

Needs Debian's ``chromium`` package (``.ci/run`` installs it); skipped with the reason when
it is absent. The browser runs with networking features off and a throwaway profile; the
card itself has no network resource (``test_card_render.test_html_is_self_contained_and_offline``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.report.document import HEADER_RGB
from harness.report.files import write_card_files
from tests.card_report import FAKE_LATENCY_SAMPLES, card_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1200, 1600

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


def _screenshot(html: Path, png: Path, profile: Path) -> np.ndarray:
    from PIL import Image

    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}", html.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert png.exists(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    with Image.open(png) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def screenshot(tmp_path_factory) -> np.ndarray:
    out = tmp_path_factory.mktemp("card")
    paths = write_card_files(card_report(), out, latency_samples=FAKE_LATENCY_SAMPLES)
    return _screenshot(paths["html"], out / "shot.png", out / "profile")


def _is(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 6) -> np.ndarray:
    return (np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tol).all(axis=-1)


def test_screenshot_shows_the_header_band_across_the_top(screenshot: np.ndarray) -> None:
    assert screenshot.shape == (HEIGHT, WIDTH, 3)
    band = screenshot[5:60, :]
    assert _is(band, HEADER_RGB).mean() > 0.8, "the card's header band is not drawn across the top"
    light = (band > 220).all(axis=-1)  # the white title text on the band
    assert light[:, : WIDTH // 2].sum() > 200, "no title text drawn on the header band"


def test_screenshot_shows_rendered_sections_not_a_blank_page(screenshot: np.ndarray) -> None:
    body = screenshot[200:, :]
    dark = (body < 90).all(axis=-1)  # body text
    assert dark.mean() > 0.005, "no text below the header: the page looks blank"
    assert len(np.unique(body.reshape(-1, 3), axis=0)) > 50, "the body is nearly one colour"
    heading = _is(body, HEADER_RGB, tol=12)  # section headings share the band's colour
    rows_with_heading = np.flatnonzero(heading[:, :600].sum(axis=1) > 20)
    assert len(rows_with_heading) > 0, "no section heading in the header colour below the band"
