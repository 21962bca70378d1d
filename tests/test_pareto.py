"""The Pareto front against brute force, objectives as data, the knee, and technique dominance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.metric_catalog import BY_NAME
from harness.pareto import (
    compare_techniques,
    fronts_by,
    knee_point,
    pareto_front,
    parse_objective,
)
from harness.records import flat_metrics
from tests.points import make_point

OBJECTIVES = [parse_objective(o) for o in ["p50_ms:min", "top1:max", "worst_class_recall:max"]]
#: metrics the random points carry, some of them missing at random
RANDOM_METRICS = ["p50_ms", "p99_ms", "top1", "worst_class_recall", "worst_group_accuracy", "energy_per_inference_mj",
                  "peak_rss_mb"]


def random_point(rng, pid: str):
    def maybe(value):  # about one value in eight is missing
        return None if rng.random() < 0.125 else value

    level = lambda: float(rng.integers(0, 4)) / 4  # noqa: E731 - few levels, so ties and duplicates are common
    return make_point(
        pid, p50=float(rng.integers(1, 5)), p99=maybe(float(rng.integers(1, 5))), top1=level(), worst=level(),
        group=maybe(level()), energy=maybe(float(rng.integers(1, 4))), rss=maybe(float(rng.integers(1, 4))),
    )


def brute_force(points, objectives):
    """Reference: a point is on the front iff no complete point is >= everywhere and > somewhere."""
    rows = {}
    excluded = {}
    for p in points:
        values = [flat_metrics(p)[o.metric] for o in objectives]
        if p.status != "ok":
            excluded[p.point_id] = "status"
        elif any(v is None for v in values):
            excluded[p.point_id] = "missing"
        else:
            rows[p.point_id] = np.array([v if o.direction == "min" else -v for v, o in zip(values, objectives, strict=True)])
    front = [pid for pid, v in rows.items() if not any(np.all(w <= v) and np.any(w < v) for w in rows.values())]
    return sorted(front), excluded


@pytest.mark.parametrize("seed", range(40))
def test_front_matches_brute_force_in_two_to_five_objectives_with_duplicates_and_missing_values(seed):
    rng = np.random.default_rng(seed)
    pts = [random_point(rng, f"p{i:02d}") for i in range(30)]
    pts += [make_point("dup-" + p.point_id, p50=p.latency.p50_ms, p99=p.latency.p99_ms, top1=p.accuracy.top1,
                       worst=p.accuracy.worst_class_recall, group=p.accuracy.worst_group_accuracy,
                       energy=p.energy.energy_per_inference_mj, rss=p.memory.peak_rss_mb if p.memory else None)
            for p in pts[:3]]
    pts.append(make_point("broken", p50=0.1, top1=1.0, status="failed"))
    k = int(rng.integers(2, 6))
    names = rng.choice(RANDOM_METRICS, size=k, replace=False)
    objectives = [parse_objective(f"{m}:{rng.choice(['min', 'max'])}") for m in names]
    result = pareto_front(pts, objectives)
    front, excluded = brute_force(pts, objectives)
    assert result.front == front
    assert result.excluded.keys() == excluded.keys()
    assert result.excluded["broken"] == "status failed"
    for pid, why in result.excluded.items():
        if pid != "broken":
            missing = why.removeprefix("no value for ").split(", ")
            assert all(flat_metrics(next(p for p in pts if p.point_id == pid))[m] is None for m in missing)
    for dup in (p for p in pts if p.point_id.startswith("dup-")):  # a duplicate shares its original's fate
        assert (dup.point_id in result.front) == (dup.point_id.removeprefix("dup-") in result.front)


def test_identical_points_are_both_on_the_front_in_id_order():
    result = pareto_front([make_point("b", top1=0.9), make_point("a", top1=0.9)], OBJECTIVES)
    assert result.front == ["a", "b"]


def test_nan_counts_as_missing_not_as_a_value():
    result = pareto_front([make_point("nan", p50=math.nan), make_point("ok")], OBJECTIVES)
    assert result.front == ["ok"] and result.excluded == {"nan": "no value for p50_ms"}


def test_every_metric_the_issue_names_is_an_objective_with_a_stored_value():
    issue = ["p50_ms", "p90_ms", "p99_ms", "energy_per_inference_mj", "peak_rss_mb", "artifact_mb", "top1",
             "worst_class_recall", "worst_group_accuracy", "worst_group_recall", "cev", "sde", "cie_fraction", "ece",
             "max_class_drop", "top1_drop"]
    stored = flat_metrics(make_point("x"))
    for name in issue:
        objective = parse_objective(name)
        assert objective.metric in stored and objective.metric in BY_NAME
    assert parse_objective("worst_group_recall").metric == "worst_group_accuracy"


def test_objective_parsing_defaults_to_the_natural_direction_and_names_the_culprit():
    assert str(parse_objective("top1")) == "top1:max"
    assert str(parse_objective("p99_ms")) == "p99_ms:min"
    with pytest.raises(ValueError, match="direction"):
        parse_objective("top1:up")
    with pytest.raises(ConfigError, match=r"'p99'.*did you mean 'p99_ms'"):
        parse_objective("p99:min")


def test_fronts_by_group_split_the_points():
    pts = [make_point("a1", p50=1, top1=0.9, runtime="a"), make_point("a2", p50=2, top1=0.8, runtime="a"),
           make_point("b1", p50=3, top1=0.95, runtime="b")]
    fronts = fronts_by(pts, OBJECTIVES[:2], key=lambda p: p.runtime)
    assert {k: v.front for k, v in fronts.items()} == {"a": ["a1"], "b": ["b1"]}


# ------------------------------------------------------------------ knee

TWO = [parse_objective("p50_ms:min"), parse_objective("top1:max")]


def test_knee_of_a_known_convex_curve_is_its_corner():
    # top-1 rises fast then saturates as latency grows: the bend is at latency 2
    curve = {1.0: 0.50, 2.0: 0.90, 3.0: 0.93, 4.0: 0.95, 5.0: 0.96}
    pts = [make_point(f"l{int(x)}", p50=x, top1=y) for x, y in curve.items()]
    pts.append(make_point("dominated", p50=4.5, top1=0.6))
    knee = knee_point(pts, TWO)
    assert knee.point_id == "l2"
    # normalised: x = 0.25, y = (0.96 - 0.90) / 0.46; distance to x + y = 1
    assert knee.distance == pytest.approx((1 - 0.25 - 0.06 / 0.46) / math.sqrt(2))
    assert "extremes" in knee.reason


def test_knee_is_none_with_a_reason_for_small_or_straight_fronts():
    two = [make_point("a", p50=1, top1=0.5), make_point("b", p50=2, top1=0.9), make_point("b2", p50=2, top1=0.9)]
    knee = knee_point(two, TWO)
    assert knee.point_id is None and "2 distinct point(s)" in knee.reason
    line = [make_point(f"l{i}", p50=float(i), top1=0.5 + 0.1 * i) for i in range(1, 5)]
    knee = knee_point(line, TWO)
    assert knee.point_id is None and "inside the line" in knee.reason
    with pytest.raises(ConfigError, match="exactly two objectives"):
        knee_point(line, OBJECTIVES)


# ------------------------------------------------------------------ techniques


def test_technique_whose_front_matches_or_beats_every_point_of_another_dominates_it():
    pts = [
        make_point("mag-1", p50=1.0, top1=0.90, prune="magnitude"),
        make_point("mag-2", p50=2.0, top1=0.95, prune="magnitude"),
        make_point("ch-1", p50=1.5, top1=0.90, prune="channel"),  # beaten by mag-1
        make_point("ch-2", p50=2.0, top1=0.95, prune="channel"),  # matched by mag-2
        make_point("int8", p50=0.5, top1=0.80, precision="int8"),  # faster than all, less accurate
        make_point("int8-missing", p50=None, top1=0.99, precision="int8"),  # cannot be ranked
    ]
    by_pair = {(c.a, c.b): c for c in compare_techniques(pts, TWO)}
    assert set(by_pair) == {("channel/fp32", "magnitude/fp32"), ("channel/fp32", "none/int8"),
                            ("magnitude/fp32", "none/int8")}
    ch_mag = by_pair[("channel/fp32", "magnitude/fp32")]
    assert ch_mag.b_dominates_a and not ch_mag.a_dominates_b
    assert ch_mag.coverage_b_over_a == 1.0 and ch_mag.coverage_a_over_b == 0.5  # ch-2 matches mag-2 only
    assert ch_mag.verdict.startswith("magnitude/fp32 dominates channel/fp32")
    cross = by_pair[("magnitude/fp32", "none/int8")]
    assert not cross.a_dominates_b and not cross.b_dominates_a and "cross" in cross.verdict
    assert cross.b_front == ["int8"]


def test_identical_and_unrankable_technique_fronts_are_reported_as_such():
    same = [make_point("a", prune="magnitude"), make_point("b", prune="channel")]
    (only,) = compare_techniques(same, TWO)
    assert only.verdict == "the fronts are identical" and not only.a_dominates_b and not only.b_dominates_a
    empty = [make_point("a", prune="magnitude"), make_point("b", p50=None, prune="channel")]
    (only,) = compare_techniques(empty, TWO)
    assert only.coverage_a_over_b is None and "channel/fp32 has no point" in only.verdict
