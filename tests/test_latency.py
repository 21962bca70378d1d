"""Latency statistics by hand-computed cases, and the stopping rule driven by a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from harness.config import MeasureSpec
from harness.measure.latency import (
    PROFILES,
    StoppingRule,
    Trace,
    assess_stability,
    bootstrap_ci,
    nearest_rank,
    relative_spread,
    resolve_rule,
    sample_latency,
    summarize,
    window_p50s,
)


def test_nearest_rank_matches_hand_computed_values():
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert nearest_rank(values, 30) == 20.0  # ceil(0.3 * 5) = rank 2
    assert nearest_rank(values, 40) == 20.0  # ceil(2.0) = rank 2
    assert nearest_rank(values, 50) == 35.0
    assert nearest_rank(values, 100) == 50.0
    assert nearest_rank(values, 0) == 15.0
    assert nearest_rank(list(range(1, 101)), 99) == 99


def summary(n: int):
    trace = Trace(warmup_s=[1.0], samples_s=[(i + 1) / 1000 for i in range(n)], wall_s=1.0)
    return summarize(trace, batch_size=4, threads=2, profile="quick", isolation="inline")


def test_tail_percentiles_are_withheld_below_mlperf_sample_counts():
    small = summary(63)
    assert small.p90_ms is None and "63 < 64" in small.p90_unavailable_reason
    assert small.p99_ms is None and "662" in small.p99_unavailable_reason
    mid = summary(64)
    assert mid.p90_ms == pytest.approx(58.0)  # ceil(0.9 * 64) = 58 -> 58 ms
    assert mid.p99_ms is None
    big = summary(662)
    assert big.p99_ms == pytest.approx(656.0)  # ceil(0.99 * 662) = 656
    assert big.p99_unavailable_reason is None


def test_summary_fields_and_throughput():
    s = summary(100)
    assert s.n_samples == 100 and s.n_warmup == 1 and s.batch_size == 4
    assert s.p50_ms == pytest.approx(50.0)
    assert s.min_ms == pytest.approx(1.0) and s.max_ms == pytest.approx(100.0)
    assert s.mean_ms == pytest.approx(50.5)
    busy_s = sum((i + 1) / 1000 for i in range(100))
    assert s.throughput_sps == pytest.approx(4 * 100 / busy_s)
    assert s.percentile_method == "nearest-rank"


class QueryClock:
    """Each query takes ``step`` seconds of fake time."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        return self.now

    def query(self) -> None:
        self.now += self.step


def test_stopping_rule_needs_both_count_and_duration():
    clock = QueryClock(0.01)
    rule = StoppingRule(warmup_runs=3, warmup_s=0.05, min_samples=20, min_duration_s=1.0, max_duration_s=10.0)
    trace = sample_latency(clock.query, rule, clock)
    assert len(trace.warmup_s) == 5  # 0.05 s of warm-up at 10 ms per query outlasts 3 runs
    assert len(trace.samples_s) == 100  # 1 s at 10 ms per query outlasts 20 samples
    clock = QueryClock(0.5)
    trace = sample_latency(clock.query, rule, clock)
    assert len(trace.warmup_s) == 3 and len(trace.samples_s) == 20


def test_stopping_rule_stops_at_the_cap_and_says_so_through_the_count():
    clock = QueryClock(1.0)
    rule = StoppingRule(warmup_runs=1, warmup_s=0.0, min_samples=1000, min_duration_s=0.0, max_duration_s=5.0)
    trace = sample_latency(clock.query, rule, clock)
    assert len(trace.samples_s) == 5
    assert summarize(trace, batch_size=1, threads=1, profile="x", isolation="inline").p90_ms is None


def test_explicit_fields_override_the_profile():
    rule = resolve_rule(MeasureSpec(profile="quick", min_samples=7))
    assert rule.min_samples == 7
    assert rule.min_duration_s == PROFILES["quick"].min_duration_s


# ---------------------------------------------------------------------- convergence, bootstrap, scenarios


class ScriptedClock:
    """Queries take the scripted durations in turn (the last one repeats)."""

    def __init__(self, steps: list[float]) -> None:
        self.now = 0.0
        self.steps = steps
        self.i = 0

    def __call__(self) -> float:
        return self.now

    def query(self) -> None:
        self.now += self.steps[min(self.i, len(self.steps) - 1)]
        self.i += 1


def test_window_p50s_and_spread_by_hand():
    samples = [9.0] * 5 + [1, 2, 3, 4, 5, 6, 7, 8, 9]  # last three windows of 3: (1,2,3) (4,5,6) (7,8,9)
    assert window_p50s(samples, 3) == [2, 5, 8]
    assert relative_spread([2, 5, 8]) == pytest.approx(3.0)
    assert window_p50s([1.0, 2.0], 3) == []
    assert window_p50s([1.0, 2.0, 3.0, 4.0], 3) == [2.0, 3.0, 4.0]  # too few for full windows: thirds
    assert relative_spread([]) == float("inf")


def test_a_settled_trace_converges_at_the_floors():
    clock = QueryClock(0.01)
    rule = StoppingRule(warmup_runs=1, warmup_s=0.0, min_samples=30, min_duration_s=0.0, max_duration_s=100.0)
    trace = sample_latency(clock.query, rule, clock)
    assert len(trace.samples_s) == 30 and not trace.hit_cap
    s = summarize(trace, batch_size=1, threads=1, profile="x", isolation="inline", rule=rule)
    assert s.stability == "converged" and s.unstable_reason is None
    assert s.window_size == 10 and s.window_p50_ms == pytest.approx([10.0, 10.0, 10.0])
    assert s.cv == pytest.approx(0.0, abs=1e-9)


def test_a_drifting_trace_is_extended_then_marked_unstable_at_the_cap():
    clock = ScriptedClock([0.01 * 1.02**i for i in range(10_000)])  # 2 % slower every query: never settles
    rule = StoppingRule(warmup_runs=1, warmup_s=0.0, min_samples=30, min_duration_s=0.0, max_duration_s=5.0,
                        max_robust_cv=None)
    trace = sample_latency(clock.query, rule, clock)
    assert trace.hit_cap and len(trace.samples_s) > 30
    s = summarize(trace, batch_size=1, threads=1, profile="x", isolation="inline", rule=rule)
    assert s.stability == "unstable"
    assert "last 3 windows of 10 samples" in s.unstable_reason and "5 s cap" in s.unstable_reason


def test_a_drift_that_settles_is_measured_past_the_floor_until_windows_agree():
    steps = [0.03] * 15 + [0.01] * 1000  # slow start, then steady
    clock = ScriptedClock(steps)
    rule = StoppingRule(warmup_runs=1, warmup_s=0.0, min_samples=30, min_duration_s=0.0, max_duration_s=100.0,
                        max_robust_cv=None)
    trace = sample_latency(clock.query, rule, clock)
    assert len(trace.samples_s) == 40 and not trace.hit_cap  # checked again one window later
    assert summarize(trace, batch_size=1, threads=1, profile="x", isolation="inline", rule=rule).stability == "converged"


def test_cap_before_the_count_floor_and_a_wide_body_are_reasons():
    rule = StoppingRule(warmup_runs=1, warmup_s=0.0, min_samples=1000, min_duration_s=0.0, max_duration_s=5.0,
                        max_robust_cv=0.1)
    samples = [1.0, 1.2, 1.5, 1.8, 2.0]
    trace = Trace(warmup_s=[1.0], samples_s=samples, wall_s=5.0, hit_cap=True)
    st = assess_stability(trace, rule)
    assert st.stability == "unstable"
    assert "before the floor of 1000" in st.reason and "robust coefficient of variation" in st.reason
    assert st.cv == pytest.approx(np.std(samples, ddof=1) / np.mean(samples))
    assert st.robust_cv == pytest.approx(1.4826 * 0.3 / 1.5)


def test_rare_spikes_do_not_make_a_steady_trace_unstable_but_stay_in_the_plain_cv():
    rule = StoppingRule(warmup_runs=1, warmup_s=0.0, min_samples=30, min_duration_s=0.0, max_duration_s=5.0)
    samples = [1.0 + 0.01 * (i % 3) for i in range(60)]
    samples[10] = samples[40] = 50.0  # two spikes: another process took the core
    st = assess_stability(Trace(warmup_s=[1.0], samples_s=samples, wall_s=1.0, hit_cap=False), rule)
    assert st.stability == "converged", st.reason
    assert st.cv > 1.0 and st.robust_cv < 0.02


def test_bootstrap_interval_is_seeded_and_brackets_the_percentile():
    rng = np.random.default_rng(1)
    ms = sorted(rng.normal(10.0, 1.0, 500))
    a = bootstrap_ci(ms, 50, n_resamples=500, seed=3)
    assert a == bootstrap_ci(ms, 50, n_resamples=500, seed=3)
    assert a != bootstrap_ci(ms, 50, n_resamples=500, seed=4)
    assert a[0] <= nearest_rank(ms, 50) <= a[1] and a[1] - a[0] < 0.5
    lo, hi = bootstrap_ci([5.0] * 10, 90, n_resamples=200, seed=0)
    assert lo == hi == 5.0


def test_summary_records_scenario_headline_and_intervals():
    trace = Trace(warmup_s=[], samples_s=[(i + 1) / 1000 for i in range(100)], wall_s=1.0)
    s = summarize(trace, batch_size=8, threads=1, profile="quick", isolation="inline", scenario="offline",
                  bootstrap_resamples=200, bootstrap_seed=7)
    assert s.scenario == "offline" and s.headline_metric == "throughput_sps"
    assert s.p50_ci_ms[0] <= s.p50_ms <= s.p50_ci_ms[1] and s.p90_ci_ms is not None
    assert (s.ci_level, s.bootstrap_resamples, s.bootstrap_seed) == (0.95, 200, 7)
    small = summarize(Trace([], [0.001] * 10, 1.0), batch_size=1, threads=1, profile="q", isolation="inline",
                      scenario="single-stream")
    assert small.headline_metric == "p90_ms" and small.p90_ci_ms is None and small.stability is None


def test_scenarios_set_the_batch_sizes_and_batch_sizes_map_to_scenarios():
    assert MeasureSpec().scenario_plan() == [("single-stream", 1), ("offline", 8)]
    assert MeasureSpec(batch_sizes=[16, 1, 4]).scenario_plan() == [
        ("single-stream", 1), ("multi-stream", 4), ("offline", 16)]
    spec = MeasureSpec(scenarios=["offline", "single-stream", "multi-stream"], multi_stream_frames=4)
    assert spec.batch_sizes == [1, 4, 32]
    assert spec.scenario_plan() == [("single-stream", 1), ("multi-stream", 4), ("offline", 32)]
    assert MeasureSpec.model_validate_json(spec.model_dump_json()) == spec  # a stored spec reads back


@pytest.mark.parametrize("kwargs, match", [
    ({"scenarios": ["offline"], "batch_sizes": [1, 2]}, "not both"),
    ({"scenarios": ["offline", "multi-stream"], "offline_batch": 8}, "two scenarios at batch size 8"),
    ({"scenarios": ["server"]}, "scenarios"),
])
def test_bad_scenario_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MeasureSpec(**kwargs)
