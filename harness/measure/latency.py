"""Latency sampling (warm-up, then a floor on count and time) and nearest-rank statistics.

Percentiles use the nearest-rank definition: the p-th percentile of n sorted samples
is the value at 1-based rank ceil(p/100 * n). Following MLPerf's early-stopping
arithmetic, p90 is withheld under 64 samples and p99 under 662: too few samples for
the tail to be estimated at all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.config import MeasureSpec
from harness.records import LatencyStats

MIN_SAMPLES_FOR = {90: 64, 99: 662}


@dataclass(frozen=True)
class StoppingRule:
    warmup_runs: int
    warmup_s: float
    min_samples: int
    min_duration_s: float
    max_duration_s: float


PROFILES = {
    "standard": StoppingRule(warmup_runs=10, warmup_s=0.2, min_samples=200, min_duration_s=10.0, max_duration_s=60.0),
    "quick": StoppingRule(warmup_runs=5, warmup_s=0.1, min_samples=64, min_duration_s=0.5, max_duration_s=10.0),
}


def resolve_rule(spec: MeasureSpec) -> StoppingRule:
    """The profile's rule with any explicit field of ``spec`` overriding it."""
    base = PROFILES[spec.profile]
    fields = {name: getattr(spec, name) for name in StoppingRule.__dataclass_fields__}
    return StoppingRule(**{k: (v if v is not None else getattr(base, k)) for k, v in fields.items()})


@dataclass(frozen=True)
class Trace:
    warmup_s: list[float]  # discarded, kept for the record
    samples_s: list[float]
    wall_s: float  # from the first measured query to the end of the last


def sample_latency(
    query: Callable[[], object], rule: StoppingRule, clock: Callable[[], float] = time.perf_counter
) -> Trace:
    """Run ``query`` back to back: warm-up (count AND time), then until both floors are met.

    Stops early only at ``max_duration_s``; the returned trace then has fewer samples
    than asked, which the statistics make visible.
    """
    warmup: list[float] = []
    start = clock()
    while len(warmup) < rule.warmup_runs or clock() - start < rule.warmup_s:
        t0 = clock()
        query()
        warmup.append(clock() - t0)
    samples: list[float] = []
    begin = clock()
    while True:
        t0 = clock()
        query()
        t1 = clock()
        samples.append(t1 - t0)
        elapsed = t1 - begin
        if (len(samples) >= rule.min_samples and elapsed >= rule.min_duration_s) or elapsed >= rule.max_duration_s:
            return Trace(warmup, samples, elapsed)


def nearest_rank(sorted_values: Sequence[float], percentile: float) -> float:
    """Nearest-rank percentile of already sorted values (1 <= rank <= n)."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(percentile / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def _tail(sorted_ms: list[float], percentile: int) -> tuple[float | None, str | None]:
    need = MIN_SAMPLES_FOR[percentile]
    if len(sorted_ms) < need:
        return None, f"too few samples: {len(sorted_ms)} < {need} needed for p{percentile}"
    return nearest_rank(sorted_ms, percentile), None


def summarize(
    trace: Trace, *, batch_size: int, threads: int | None, profile: str, isolation: str
) -> LatencyStats:
    ms = sorted(s * 1e3 for s in trace.samples_s)
    arr = np.asarray(ms)
    p90, p90_reason = _tail(ms, 90)
    p99, p99_reason = _tail(ms, 99)
    busy_s = float(np.sum(trace.samples_s))
    return LatencyStats(
        batch_size=batch_size,
        n_samples=len(ms),
        n_warmup=len(trace.warmup_s),
        p50_ms=nearest_rank(ms, 50),
        p90_ms=p90,
        p99_ms=p99,
        mean_ms=float(arr.mean()),
        std_ms=float(arr.std(ddof=1)) if len(ms) > 1 else 0.0,
        min_ms=ms[0],
        max_ms=ms[-1],
        duration_s=trace.wall_s,
        throughput_sps=batch_size * len(ms) / busy_s if busy_s > 0 else float("nan"),
        p90_unavailable_reason=p90_reason,
        p99_unavailable_reason=p99_reason,
        threads=threads,
        profile=profile,
        isolation=isolation,
    )
