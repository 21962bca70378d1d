"""Objectives as data, the Pareto front, and operating-point selection.

Pure functions over :class:`~harness.records.OperatingPoint`; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.records import OperatingPoint, Selection, flat_metrics

Direction = Literal["min", "max"]

#: metrics an objective may name, with the direction that is better by default
KNOWN_METRICS: dict[str, Direction] = {
    "p50_ms": "min",
    "p90_ms": "min",
    "p99_ms": "min",
    "mean_ms": "min",
    "throughput_sps": "max",
    "peak_rss_mb": "min",
    "artifact_mb": "min",
    "energy_per_inference_mj": "min",
    "top1": "max",
    "worst_class_recall": "max",
    "worst_class_drop": "min",
    "worst_group_accuracy": "max",
    "cev": "min",
    "sde": "min",
    "cie_fraction": "min",
    "ece": "min",
    "n_classes_hurt": "min",
}


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: Direction

    def __str__(self) -> str:
        return f"{self.metric}:{self.direction}"


def parse_objective(text: str) -> Objective:
    """``"p50_ms:min"`` -> Objective; a bare metric name takes its natural direction."""
    metric, _, direction = text.partition(":")
    if metric not in KNOWN_METRICS:
        raise ValueError(f"unknown objective metric {metric!r}; known: {', '.join(sorted(KNOWN_METRICS))}")
    direction = direction or KNOWN_METRICS[metric]
    if direction not in ("min", "max"):
        raise ValueError(f"objective direction must be 'min' or 'max', got {direction!r}")
    return Objective(metric, direction)  # type: ignore[arg-type]


def _value(point: OperatingPoint, objective: Objective) -> float | None:
    value = flat_metrics(point).get(objective.metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if objective.direction == "min" else -value  # everything minimised below


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is no worse than ``b`` everywhere and strictly better somewhere (minimising)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class FrontResult:
    front: list[str]  # point ids on the front, in deterministic order
    excluded: dict[str, str]  # point id -> why it could not be ranked


def pareto_front(points: Sequence[OperatingPoint], objectives: Sequence[Objective]) -> FrontResult:
    """Non-dominated points among those with a value for every objective.

    Points with a missing value (failed, or a metric that could not be measured) are
    excluded and listed. Duplicate objective vectors are all kept on the front. Order is
    by point id, so the result is deterministic.
    """
    vectors: dict[str, list[float]] = {}
    excluded: dict[str, str] = {}
    for p in sorted(points, key=lambda p: p.point_id):
        if p.status != "ok":
            excluded[p.point_id] = f"status {p.status}"
            continue
        values = [_value(p, o) for o in objectives]
        missing = [o.metric for o, v in zip(objectives, values, strict=True) if v is None]
        if missing:
            excluded[p.point_id] = f"no value for {', '.join(missing)}"
            continue
        vectors[p.point_id] = values  # type: ignore[assignment]
    front = [
        pid
        for pid, v in vectors.items()
        if not any(dominates(other, v) for qid, other in vectors.items() if qid != pid)
    ]
    return FrontResult(front=front, excluded=excluded)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def select_operating_point(
    points: Sequence[OperatingPoint],
    baseline: OperatingPoint | None,
    *,
    batch_size: int,
    max_top1_drop: float,
    max_worst_class_drop: float,
    latency_metric: str = "p50_ms",
) -> Selection:
    """Constraint-first choice: the fastest point that keeps accuracy *and* the worst class.

    The accuracy-only choice (fastest point within the top-1 budget, ignoring the worst
    class) is computed beside it, so a reader sees when fairness changed the answer.
    """
    constraints = {"max_top1_drop": max_top1_drop, "max_worst_class_drop": max_worst_class_drop}
    candidates = [
        p
        for p in points
        if p.status == "ok" and p.batch_size == batch_size and p.accuracy and p.metric(latency_metric) is not None
    ]
    if baseline is None or baseline.accuracy is None or not candidates:
        why = "no dense baseline was measured" if baseline is None or baseline.accuracy is None else (
            f"no operating point at batch {batch_size} completed"
        )
        return Selection(None, f"nothing selected: {why}", None, f"nothing selected: {why}", False, batch_size, constraints)

    base_top1 = baseline.accuracy.top1
    base_worst = baseline.accuracy.worst_class_recall
    top1_floor = base_top1 - max_top1_drop
    worst_floor = base_worst - max_worst_class_drop

    def fastest(pool: list[OperatingPoint]) -> OperatingPoint | None:
        return min(pool, key=lambda p: (p.metric(latency_metric), p.point_id), default=None)

    accuracy_ok = [p for p in candidates if p.accuracy.top1 >= top1_floor - 1e-12]
    fair_ok = [p for p in accuracy_ok if p.accuracy.worst_class_recall >= worst_floor - 1e-12]
    acc_choice = fastest(accuracy_ok)
    choice = fastest(fair_ok)

    def describe(p: OperatingPoint) -> str:
        return (
            f"{p.variant_name} on {p.runtime} (batch {p.batch_size}): {latency_metric} "
            f"{p.metric(latency_metric):.3f} ms, top-1 {_pct(p.accuracy.top1)}, "
            f"worst-class recall {_pct(p.accuracy.worst_class_recall)} ({p.accuracy.worst_class})"
        )

    if acc_choice is None:
        acc_reason = f"no point keeps top-1 within {_pct(max_top1_drop)} of the dense {_pct(base_top1)}"
    else:
        acc_reason = (
            f"fastest point with top-1 >= {_pct(top1_floor)} (dense {_pct(base_top1)} minus "
            f"{_pct(max_top1_drop)}), worst class ignored: {describe(acc_choice)}"
        )
    if choice is None:
        reason = (
            f"no point keeps top-1 >= {_pct(top1_floor)} and worst-class recall >= {_pct(worst_floor)}"
        )
    else:
        reason = (
            f"fastest point with top-1 >= {_pct(top1_floor)} and worst-class recall >= "
            f"{_pct(worst_floor)} (dense {_pct(base_worst)} minus {_pct(max_worst_class_drop)}): "
            f"{describe(choice)}"
        )
    changed = (choice.point_id if choice else None) != (acc_choice.point_id if acc_choice else None)
    if changed and acc_choice is not None:
        reason += (
            f". Fairness changed the choice: the accuracy-only pick {acc_choice.variant_name} on "
            f"{acc_choice.runtime} drops worst-class recall to {_pct(acc_choice.accuracy.worst_class_recall)}"
        )
    return Selection(
        point_id=choice.point_id if choice else None,
        reason=reason,
        accuracy_only_point_id=acc_choice.point_id if acc_choice else None,
        accuracy_only_reason=acc_reason,
        fairness_changed_choice=changed,
        batch_size=batch_size,
        constraints=constraints,
    )
