"""Hand-built operating points for the Pareto and selection tests: only the metrics a test names."""

from __future__ import annotations

from harness.records import AccuracyStats, EnergyStats, LatencyStats, MemoryStats, OperatingPoint


def make_point(
    pid: str,
    *,
    p50: float | None = 1.0,
    p99: float | None = None,
    top1: float | None = 0.9,
    worst: float | None = None,
    per_class: dict[str, float | None] | None = None,
    group: float | None = None,
    energy: float | None = None,
    rss: float | None = None,
    status: str = "ok",
    batch: int = 1,
    name: str | None = None,
    runtime: str = "onnxruntime",
    prune: str = "none",
    precision: str = "fp32",
) -> OperatingPoint:
    """A point; ``per_class`` sets per-class recall (worst-class recall is its minimum)."""
    acc = None
    if top1 is not None:
        recall = per_class if per_class is not None else {"a": top1 if worst is None else worst}
        worst_name = min((c for c, r in recall.items() if r is not None), key=lambda c: recall[c])
        acc = AccuracyStats(
            100, top1, dict(recall), {c: 10 for c in recall}, recall[worst_name], worst_name,
            worst_group_accuracy=group, worst_group=None if group is None else "sex=f",
        )
    lat = None if p50 is None else LatencyStats(batch, 100, 5, p50, p50, p99, p50, 0.0, p50, p50, 1.0, 1.0)
    return OperatingPoint(
        pid, pid, name or pid, runtime, batch, prune, 0.0 if prune == "none" else 0.5, precision, status,
        accuracy=acc, latency=lat, memory=None if rss is None else MemoryStats(1.0, rss),
        energy=EnergyStats(energy, "cpu-package" if energy is not None else None, None,
                           None if energy is not None else "no meter"),
    )
