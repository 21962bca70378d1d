"""Number formatting and record lookups shared by the card's sections (pure)."""

from __future__ import annotations

from harness.records import OperatingPoint, RunReport
from harness.report.document import Code, Inline, Strong

NA = "n/a"
NO_SUPPORT = "n/a (no support)"
_ERROR_CHARS = 80


def pct(x: float | None) -> str:
    return NA if x is None else f"{100 * x:.1f}%"


def pp(delta: float | None) -> str:
    """A signed difference of two fractions, in percentage points."""
    if delta is None:
        return NA
    points = round(100 * delta, 1) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0
    return f"{points:+.1f} pp"


def ms(x: float | None) -> str:
    return NA if x is None else f"{x:.3f}"


def mb(x: float | None) -> str:
    return NA if x is None else f"{x:.2f} MB"


def num(x: float | None, digits: int = 2) -> str:
    return NA if x is None else f"{x:.{digits}f}"


def recall(x: float | None) -> str:
    return NO_SUPPORT if x is None else pct(x)


def unavailable(reason: str | None) -> str:
    return f"{NA} ({reason or 'no reason recorded'})"


def ci_text(ci: list[float] | None, fmt) -> str:
    return f" (95% CI {fmt(ci[0])} to {fmt(ci[1])})" if ci else ""


def short_error(error: str | None) -> str:
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    text = lines[0] if lines else "no error message recorded"
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def describe(point: OperatingPoint) -> list[Inline]:
    return [Strong(point.variant_name), f" on {point.runtime} at batch {point.batch_size} ({point.precision})"]


def metric_name(name: str) -> Code:
    return Code(name)


def find_point(report: RunReport, point_id: str | None) -> OperatingPoint | None:
    return next((p for p in report.points if p.point_id == point_id), None) if point_id else None


def baseline(report: RunReport, chosen: OperatingPoint | None) -> OperatingPoint | None:
    """The dense point to compare against: same runtime and batch as the chosen one when measured."""
    dense = [p for p in report.points if p.variant_id == report.baseline_variant_id]

    def rank(p: OperatingPoint) -> tuple[bool, bool]:
        same = chosen is not None and (p.runtime, p.batch_size) == (chosen.runtime, chosen.batch_size)
        return (p.accuracy is None, not same)

    return min(dense, key=rank, default=None)


def train_counts(report: RunReport) -> dict[str, int] | None:
    split = next((s for s in report.dataset.splits if s.name.lower() in ("train", "training")), None)
    return split.per_class_counts if split else None
