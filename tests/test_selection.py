"""Constraints and the three selection policies on small hand-built cases."""

from __future__ import annotations

import pytest

from harness.config import SelectionSpec
from harness.errors import ConfigError
from harness.experiment import load_experiment
from harness.pareto import parse_objective
from harness.selection import (
    Constraint,
    constraints_from_spec,
    normalise_weights,
    parse_constraint,
    parse_weight,
    select_for_spec,
    select_operating_point,
)
from tests.points import make_point

OBJ = [parse_objective(o) for o in ["p50_ms:min", "top1:max", "worst_class_recall:max"]]
DROPS = [parse_constraint("top1_drop<=0.01"), parse_constraint("worst_class_drop<=0.03")]


def select(points, baseline, constraints=DROPS, objectives=OBJ, **kw):
    return select_operating_point(points, baseline, batch_size=1, objectives=objectives, constraints=constraints, **kw)


def by_policy(selection):
    return {c.policy: c for c in selection.policies}


def test_fairness_changes_the_choice_when_the_fast_point_hurts_the_worst_class():
    dense = make_point("dense", p50=1.0, top1=0.95, worst=0.90, name="dense")
    fast_unfair = make_point("fast", p50=0.2, top1=0.945, worst=0.60)
    fair = make_point("fair", p50=0.5, top1=0.945, worst=0.88)
    s = select([dense, fast_unfair, fair], dense)
    assert s.point_id == "fair" and s.accuracy_only_point_id == "fast" and s.fairness_changed_choice
    assert "Fairness changed the choice" in s.reason and "worst_class_drop <= 0.03 fails at 30.0 pp" in s.reason
    policies = by_policy(s)
    assert policies["constraint-first"].binding_constraints == ["worst_class_drop <= 0.03"]
    assert policies["accuracy-only"].binding_constraints == []  # it ignores the fairness constraint
    assert (policies["constraint-first"].point_id, policies["accuracy-only"].point_id) == (s.point_id, s.accuracy_only_point_id)
    assert policies["accuracy-only"].reason == s.accuracy_only_reason
    assert s.constraints == {"max_top1_drop": 0.01, "max_worst_class_drop": 0.03}  # the names the card shows


def test_the_binding_constraint_is_the_one_that_ruled_out_a_better_point():
    dense = make_point("dense", p50=3.0, p99=4.0, top1=0.95, energy=50.0)
    spiky = make_point("spiky", p50=1.0, p99=9.0, top1=0.95)  # fastest median, tail over budget, no meter
    steady = make_point("steady", p50=2.0, p99=3.0, top1=0.95, energy=50.0)
    constraints = [*DROPS, parse_constraint("p99_ms<=5"), parse_constraint("energy_per_inference_mj<=100")]
    s = select([dense, spiky, steady], dense, constraints)
    cf = by_policy(s)["constraint-first"]
    assert cf.point_id == "steady"
    # energy ruled out 'spiky' too (no meter: no value), and also binds; the drops never did
    assert cf.binding_constraints == ["p99_ms <= 5", "energy_per_inference_mj <= 100"]
    assert "spiky (p99_ms <= 5 fails at 9.000 ms; no value for energy_per_inference_mj)" in cf.reason


def test_a_point_lacking_a_constrained_metric_is_ineligible_never_zero():
    dense = make_point("dense", p50=3.0, top1=0.95, energy=50.0)
    unmetered = make_point("unmetered", p50=1.0, top1=0.95, energy=None)
    metered = make_point("metered", p50=2.0, top1=0.95, energy=40.0)
    s = select([dense, unmetered, metered], dense, [parse_constraint("energy_per_inference_mj<=45")])
    assert s.point_id == "metered"
    assert "unmetered (no value for energy_per_inference_mj)" in s.reason
    group = [parse_constraint("worst_group_recall>=0.8")]  # alias of worst_group_accuracy
    s = select([dense, metered], dense, group)
    assert s.point_id is None and "no value for worst_group_accuracy" in s.reason


def test_no_feasible_point_selects_nothing_and_says_why():
    dense = make_point("dense", p50=1.0, top1=0.95)
    bad = make_point("bad", p50=0.1, top1=0.5)
    s = select([bad], dense, [parse_constraint("top1_drop<=0.01")])
    assert s.point_id is None and s.accuracy_only_point_id is None and not s.fairness_changed_choice
    assert all(c.point_id is None for c in s.policies)
    assert s.reason.startswith("nothing selected (constraint-first): no point meets top1_drop <= 0.01; ruled out: bad (top1_drop")
    assert by_policy(s)["constraint-first"].binding_constraints == ["top1_drop <= 0.01"]
    s = select([bad], None, [parse_constraint("top1_drop<=0.01")])
    assert s.point_id is None and "no dense baseline" in s.reason
    s = select([make_point("bs8", batch=8)], dense)
    assert "no completed point at batch 1 has a value for p50_ms" in s.reason


def test_max_class_drop_and_worst_group_constraints_read_the_right_numbers():
    dense = make_point("dense", p50=3.0, top1=0.9, per_class={"a": 0.9, "b": 0.9}, group=0.85)
    drops_b = make_point("drops-b", p50=1.0, top1=0.9, per_class={"a": 0.95, "b": 0.85}, group=0.85)
    low_group = make_point("low-group", p50=2.0, top1=0.9, per_class={"a": 0.9, "b": 0.89}, group=0.7)
    ok = make_point("ok", p50=2.5, top1=0.9, per_class={"a": 0.9, "b": 0.89}, group=0.82)
    constraints = [parse_constraint("max_class_drop<=0.03"), parse_constraint("worst_group_accuracy>=0.8")]
    s = select([dense, drops_b, low_group, ok], dense, constraints)
    cf = by_policy(s)["constraint-first"]
    assert cf.point_id == "ok"
    assert cf.binding_constraints == ["max_class_drop <= 0.03", "worst_group_accuracy >= 0.8"]
    assert "max_class_drop <= 0.03 fails at 5.0 pp" in cf.reason  # class b lost 5 points; a gained
    assert by_policy(s)["accuracy-only"].point_id == "drops-b" and s.fairness_changed_choice


def test_weighted_utility_uses_min_max_normalised_axes_and_the_given_weights():
    two = OBJ[:2]
    pts = [make_point("fast", p50=1.0, top1=0.80), make_point("mid", p50=2.0, top1=0.95),
           make_point("slow", p50=5.0, top1=1.00)]
    s = select(pts, None, [], objectives=two)
    wu = by_policy(s)["weighted-utility"]
    # equal weights: fast 0.5*1 + 0.5*0 = 0.5; mid 0.5*0.75 + 0.5*0.75 = 0.75; slow 0.5*0 + 0.5*1 = 0.5
    assert wu.point_id == "mid" and wu.utility == pytest.approx(0.75)
    assert by_policy(select(pts, None, [], objectives=two, weights={"top1": 9, "p50_ms": 1}))["weighted-utility"].point_id == "slow"
    # a constraint rules out the best-utility point: utility takes the next one, and names the binding constraint
    wu = by_policy(select(pts, None, [parse_constraint("p50_ms<=1.5")], objectives=two))["weighted-utility"]
    assert (wu.point_id, wu.binding_constraints) == ("fast", ["p50_ms <= 1.5"]) and wu.utility == pytest.approx(0.5)
    assert by_policy(s)["constraint-first"].utility is None


def test_selection_carries_all_policies_in_order_and_the_knee():
    curve = [make_point(f"l{int(x)}", p50=x, top1=y) for x, y in {1.0: 0.5, 2.0: 0.9, 3.0: 0.93, 4.0: 0.95}.items()]
    s = select(curve, None, [], objectives=OBJ[:2])
    assert [c.policy for c in s.policies] == ["constraint-first", "weighted-utility", "accuracy-only"]
    assert s.knee_point_id == "l2" and "p50_ms:min vs top1:max" in s.knee_reason
    s = select(curve[:2], None, [], objectives=OBJ[:2])
    assert s.knee_point_id is None and s.knee_reason.startswith("no knee")


def test_the_run_decision_uses_the_spec_budgets_against_the_dense_baseline():
    dense = make_point("dense", p50=3.0, p99=4.0, top1=0.95, name="dense", energy=9.0, rss=100.0)
    heavy = make_point("heavy", p50=1.0, p99=2.0, top1=0.95, energy=9.0, rss=900.0)
    lean = make_point("lean", p50=2.0, p99=2.5, top1=0.95, energy=9.0, rss=90.0)
    spec = SelectionSpec(memory_budget_mb=500, latency_budget_ms=3, constraints=["energy_per_inference_mj<=10"])
    assert [str(c) for c in constraints_from_spec(spec)] == [
        "top1_drop <= 0.01", "worst_class_drop <= 0.03", "p99_ms <= 3", "peak_rss_mb <= 500",
        "energy_per_inference_mj <= 10",
    ]
    s = select_for_spec([dense, heavy, lean], spec)
    assert s.point_id == "lean" and by_policy(s)["constraint-first"].binding_constraints == ["peak_rss_mb <= 500"]
    assert s.accuracy_only_point_id == "lean"  # a memory budget is not a fairness constraint
    assert s.constraints["max_p99_ms"] == 3 and s.constraints["max_peak_rss_mb"] == 500


@pytest.mark.parametrize(
    "text, message",
    [
        ("p99_ms<5", "expected METRIC<=NUMBER"),
        ("p99_ms=5", "expected METRIC<=NUMBER"),
        ("latency<=5", "unknown metric in constraint 'latency<=5'"),
        ("p99<=5", "did you mean 'p99_ms'"),
        ("top1>=high", "bound 'high' is not a finite number"),
        ("top1>=nan", "not a finite number"),
    ],
)
def test_a_bad_constraint_is_a_config_error_naming_the_culprit(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_constraint(text)


def test_constraint_grammar_accepts_spaces_aliases_and_exponents():
    assert parse_constraint(" worst_group_recall >= 8e-1 ") == Constraint("worst_group_accuracy", ">=", 0.8)
    assert parse_constraint("max_class_drop<=0.03").key == "max_class_drop"
    assert parse_constraint("cie_fraction<=0.05").key == "max_cie_fraction"


def test_weights_are_checked_against_the_objectives():
    assert parse_weight("top1=2") == ("top1", 2.0)
    assert normalise_weights({}, OBJ) == pytest.approx({"p50_ms": 1 / 3, "top1": 1 / 3, "worst_class_recall": 1 / 3})
    assert normalise_weights({"top1": 3, "p50_ms": 1}, OBJ) == {"p50_ms": 0.25, "top1": 0.75, "worst_class_recall": 0.0}
    for bad, message in [({"p99_ms": 1}, "not an objective"), ({"top1": -1}, ">= 0"), ({"top1": 0}, "sum to 0")]:
        with pytest.raises(ConfigError, match=message):
            normalise_weights(bad, OBJ)
    with pytest.raises(ConfigError, match="METRIC=NUMBER"):
        parse_weight("top1")


@pytest.mark.parametrize(
    "section, message",
    [
        ("max_clas_drop = 0.1", "selection.max_clas_drop: unknown key"),
        ('constraints = ["p99ms<=3"]', "selection.constraints: unknown metric"),
        ("weights = {p99_ms = 1}", "selection.weights: weight on 'p99_ms'"),
        ('latency_budget_metric = "p95_ms"', "selection.latency_budget_metric"),
        ("min_worst_group_recall = 1.5", "selection.min_worst_group_recall"),
    ],
)
def test_selection_typos_in_an_experiment_name_the_key(tmp_path, section, message):
    path = tmp_path / "e.toml"
    path.write_text(f"[selection]\n{section}\n")
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


def _with_bias_amp(point, delta):
    from dataclasses import replace

    from harness.records import BiasStats

    bias = BiasStats(1, None, None, [], None, 0.0, 0, True, None, None, {}, 0.0, None, 0.0, 0, None, {}, {}, 10,
                     bias_amp_a_to_t_delta=delta)
    return replace(point, bias=bias)


def test_a_bias_amplification_constraint_does_not_restrict_the_accuracy_only_policy():
    dense = _with_bias_amp(make_point("dense", p50=1.0, top1=0.95, name="dense"), 0.0)
    fast = _with_bias_amp(make_point("fast", p50=0.2, top1=0.95), 0.20)  # compression amplified the bias
    fair = _with_bias_amp(make_point("fair", p50=0.5, top1=0.95), 0.01)
    amp = parse_constraint("bias_amp_delta<=0.05")
    s = select([dense, fast, fair], dense, [*DROPS, amp])
    policies = by_policy(s)
    assert policies["constraint-first"].point_id == "fair"
    assert policies["constraint-first"].binding_constraints == ["bias_amp_delta <= 0.05"]
    assert policies["accuracy-only"].point_id == "fast" and policies["accuracy-only"].binding_constraints == []
    ignored = "(fairness constraints ignored: worst_class_drop <= 0.03, bias_amp_delta <= 0.05)"
    assert ignored in policies["accuracy-only"].reason
    assert s.fairness_changed_choice and "bias_amp_delta <= 0.05 fails at 20.0 pp" in s.reason


@pytest.mark.parametrize("row", __import__("harness.metric_catalog", fromlist=["METRICS"]).METRICS,
                         ids=lambda row: row.name)
def test_accuracy_only_ignores_exactly_the_catalog_s_fairness_constraints(row):
    """A constraint no point meets (every point lacks the value or misses the bound) rules out everything,
    unless it is on a fairness metric, which the accuracy-only policy ignores."""
    dense = make_point("dense", p50=1.0, top1=0.95, name="dense")
    fast = make_point("fast", p50=0.2, top1=0.95)
    impossible = parse_constraint(f"{row.name}<=-1000000")
    policies = by_policy(select([dense, fast], dense, [impossible]))
    assert policies["constraint-first"].point_id is None
    assert policies["accuracy-only"].point_id == ("fast" if row.fairness else None)
