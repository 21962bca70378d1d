"""Writing a run's card files, and gathering what a card needs from the store (the I/O side).

The renderers in :mod:`harness.report.card` are pure; this module draws the figures,
reads them back for the HTML card, and writes ``card.md``, ``card.html`` and
``card.json`` beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.records import RunReport
from harness.report.figures import PowerTrace, figure_plan, write_figures

CARD_FILES = {"md": "card.md", "html": "card.html", "json": "card.json"}


def write_card_files(
    report: RunReport,
    out_dir: Path,
    *,
    latency_samples: Mapping[str, Sequence[float]] | None = None,
    power_traces: Sequence[PowerTrace] = (),
) -> dict[str, Path]:
    """Draw the card's figures into ``out_dir`` and write the card in every format; return format -> path."""
    from harness.report.card import render_card

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = figure_plan(report, latency_samples=latency_samples, power_traces=power_traces)
    images = write_figures(report, out_dir, plan, latency_samples=latency_samples, power_traces=power_traces)
    written = {}
    for fmt, name in CARD_FILES.items():
        path = out_dir / name
        path.write_text(render_card(report, fmt, figures=plan, images=images), encoding="utf-8")
        written[fmt] = path
    return written


def render_stored_card(report: RunReport, fmt: str, *, latency_samples: Mapping[str, Sequence[float]]) -> str:
    """The card of a stored run in ``fmt``; for HTML the figures are redrawn in a scratch directory."""
    import tempfile

    from harness.report.card import render_card

    plan = figure_plan(report, latency_samples=latency_samples)
    if fmt != "html":
        return render_card(report, fmt, figures=plan)
    with tempfile.TemporaryDirectory(prefix="harness-card-") as tmp:
        images = write_figures(report, Path(tmp), plan, latency_samples=latency_samples)
    return render_card(report, fmt, figures=plan, images=images)
