"""The report in a real browser: headless Chromium renders it, and the verdict, the table and the charts are
there and visible. Skipped where Chromium is not installed (CI installs Debian's chromium package)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from advisor.report import CHROMIUM, chromium, screenshot
from harness.io import atomic_write_text
from harness.record import Prediction
from tests.advisor.test_report import decision_report

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} not found: install Debian's chromium package (apt-get install -y chromium)",
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("browser-report") / "report.html"
    predictions = [
        Prediction(
            id="te-1",
            input="charged twice",
            target="billing",
            prediction="refund",
            output="refund",
            score=0.0,
            prompt_tokens=9,
            output_tokens=1,
        )
    ]
    atomic_write_text(path, decision_report(predictions))
    return path


def test_rendered_dom_has_the_verdict_the_table_and_the_charts(report):
    proc = chromium(report, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    verdict = re.search(r'<section id="verdict".*?</section>', dom, re.S).group(0)
    assert "No measured run meets the goals" in verdict and "LoRA r8" in verdict
    table = re.search(r'<table id="runs">.*?</table>', dom, re.S).group(0)
    assert table.count("<tr") == 1 + 6  # header + prompt, rag, three LoRA sizes, the failed run
    assert len(re.findall(r"<svg\b", dom)) == 4
    assert "Worst errors of LoRA r8" in dom


def test_screenshot_shows_the_verdict_box_and_the_charts(report, tmp_path):
    from PIL import Image

    png = screenshot(report, tmp_path / "report.png")
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    image = Image.open(png).convert("RGB")
    assert image.size == (1280, 2400)
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 24)}
    # the unmet-goals verdict border (#a40e26) and LoRA's chart colour (#e8710a) are painted on screen
    assert (0xA4, 0x0E, 0x26) in colours
    assert (0xE8, 0x71, 0x0A) in colours
