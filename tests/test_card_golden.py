"""Golden model cards: a deterministic RunReport rendered as Markdown, HTML and JSON, byte for byte.

The report is built in code (tests/card_report.py), with stand-in figure bytes, so the
goldens pin the card and not matplotlib. After an intended change to the card, regenerate
them and review the diff:

    HARNESS_REGEN_GOLDEN=1 python -m pytest tests/test_card_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.report.card import render_card
from harness.report.figures import figure_plan
from tests.card_report import FAKE_IMAGES, FAKE_LATENCY_SAMPLES, card_report

GOLDEN = Path(__file__).parent / "data" / "golden"
REGEN = os.environ.get("HARNESS_REGEN_GOLDEN") == "1"


def _render(fmt: str, *, hostile: bool = False) -> str:
    report = card_report(hostile=hostile)
    plan = figure_plan(report, latency_samples=FAKE_LATENCY_SAMPLES)
    return render_card(report, fmt, figures=plan, images=FAKE_IMAGES)


@pytest.mark.parametrize(("name", "fmt", "hostile"), [
    ("card.md", "md", False), ("card.html", "html", False), ("card.json", "json", False),
    ("card_hostile.md", "md", True), ("card_hostile.html", "html", True),
])
def test_card_matches_golden(name: str, fmt: str, hostile: bool) -> None:
    text = _render(fmt, hostile=hostile)
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert path.exists(), f"{path} missing: run with HARNESS_REGEN_GOLDEN=1 to create it"
    assert text.encode("utf-8") == path.read_bytes(), (
        f"{name} differs from its golden; if the change is intended, regenerate with HARNESS_REGEN_GOLDEN=1 "
        "and review the diff")


def test_rendering_is_deterministic() -> None:
    assert all(_render(fmt) == _render(fmt) for fmt in ("md", "html", "json"))
