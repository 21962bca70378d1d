"""The Pareto front against brute force, and the fairness-aware selection on hand-built cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from harness.pareto import parse_objective, pareto_front, select_operating_point
from harness.records import AccuracyStats, LatencyStats, OperatingPoint

OBJECTIVES = [parse_objective(o) for o in ["p50_ms:min", "top1:max", "worst_class_recall:max"]]


def point(pid: str, p50: float | None, top1: float, worst: float, *, status="ok", batch=1, name=None) -> OperatingPoint:
    acc = AccuracyStats(100, top1, {"a": worst}, {"a": 50}, worst, "a")
    lat = None if p50 is None else LatencyStats(batch, 100, 5, p50, p50, None, p50, 0.0, p50, p50, 1.0, 1.0)
    return OperatingPoint(pid, pid, name or pid, "onnxruntime", batch, "none", 0.0, "fp32", status, accuracy=acc, latency=lat)


def brute_force(points):
    keep = []
    for p in points:
        v = (p.latency.p50_ms, -p.accuracy.top1, -p.accuracy.worst_class_recall)
        dominated = False
        for q in points:
            w = (q.latency.p50_ms, -q.accuracy.top1, -q.accuracy.worst_class_recall)
            if all(a <= b for a, b in zip(w, v)) and any(a < b for a, b in zip(w, v)):
                dominated = True
        if not dominated:
            keep.append(p.point_id)
    return sorted(keep)


@pytest.mark.parametrize("seed", range(20))
def test_front_matches_brute_force_with_duplicates_and_missing_values(seed):
    rng = np.random.default_rng(seed)
    pts = [point(f"p{i:02d}", float(rng.integers(1, 6)), float(rng.integers(0, 4)) / 4, float(rng.integers(0, 4)) / 4) for i in range(25)]
    pts.append(point("dup", pts[0].latency.p50_ms, pts[0].accuracy.top1, pts[0].accuracy.worst_class_recall))
    pts.append(point("nolat", None, 1.0, 1.0))
    pts.append(point("broken", 0.1, 1.0, 1.0, status="failed"))
    result = pareto_front(pts, OBJECTIVES)
    complete = [p for p in pts if p.latency is not None and p.status == "ok"]
    assert result.front == brute_force(complete)
    assert result.excluded == {"broken": "status failed", "nolat": "no value for p50_ms"}


def test_identical_points_are_both_on_the_front():
    result = pareto_front([point("b", 1.0, 0.9, 0.8), point("a", 1.0, 0.9, 0.8)], OBJECTIVES)
    assert result.front == ["a", "b"]


def test_objective_parsing_defaults_to_the_natural_direction():
    assert str(parse_objective("top1")) == "top1:max"
    assert str(parse_objective("p99_ms")) == "p99_ms:min"
    with pytest.raises(ValueError, match="direction"):
        parse_objective("top1:up")


def test_fairness_changes_the_choice_when_the_fast_point_hurts_the_worst_class():
    dense = point("dense", 1.0, 0.95, 0.90, name="dense")
    fast_unfair = point("fast", 0.2, 0.945, 0.60, name="fast")
    fair = point("fair", 0.5, 0.945, 0.88, name="fair")
    s = select_operating_point([dense, fast_unfair, fair], dense, batch_size=1, max_top1_drop=0.01, max_worst_class_drop=0.03)
    assert s.point_id == "fair"
    assert s.accuracy_only_point_id == "fast"
    assert s.fairness_changed_choice
    assert "Fairness changed the choice" in s.reason


def test_selection_ignores_other_batch_sizes_and_reports_when_nothing_qualifies():
    dense = point("dense", 1.0, 0.95, 0.90)
    other_batch = point("bs8", 0.1, 0.99, 0.99, batch=8)
    s = select_operating_point([dense, other_batch], dense, batch_size=1, max_top1_drop=0.0, max_worst_class_drop=0.0)
    assert s.point_id == "dense" and not s.fairness_changed_choice
    bad = point("bad", 0.1, 0.5, 0.1)
    s = select_operating_point([bad], dense, batch_size=1, max_top1_drop=0.01, max_worst_class_drop=0.01)
    assert s.point_id is None and "no point keeps" in s.reason
    s = select_operating_point([bad], None, batch_size=1, max_top1_drop=0.01, max_worst_class_drop=0.01)
    assert s.point_id is None and "no dense baseline" in s.reason
