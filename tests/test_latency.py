"""Latency statistics by hand-computed cases, and the stopping rule driven by a fake clock."""

from __future__ import annotations

import pytest

from harness.config import MeasureSpec
from harness.measure.latency import PROFILES, StoppingRule, Trace, nearest_rank, resolve_rule, sample_latency, summarize


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
