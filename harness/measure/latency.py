"""Latency sampling (warm-up, floors, convergence) and nearest-rank statistics.

Stopping rule: a warm-up by count AND time (discarded, kept in the raw trace); then at
least ``min_samples`` samples AND ``min_duration_s`` seconds; then a convergence check in
the manner of Triton's perf_analyzer: the p50 of each of the last three windows of
``window_size`` samples agree within ``window_tolerance`` (max/min - 1). Sampling goes on,
checked once per window, until they agree or ``max_duration_s`` runs out. The finished
trace is then judged: it is ``unstable`` (with the reason) when the cap came before the
floors, when the windows never agreed, or when the robust coefficient of variation of all
samples (1.4826 x median absolute deviation / median) exceeds ``max_robust_cv``. The robust
figure judges the body of the distribution: rare spikes from other processes (which make
the plain ``cv``, also recorded, meaningless on a shared machine) show in p99 and max instead.
trtexec warns above 2.5 % CV for GPU compute time; the CPU bound is looser (25 %) because
host latency carries OS jitter.

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
N_WINDOWS = 3
CI_LEVEL = 0.95
#: the figure each MLPerf scenario is judged by
HEADLINE = {"single-stream": "p90_ms", "multi-stream": "p99_ms", "offline": "throughput_sps"}


@dataclass(frozen=True)
class StoppingRule:
    warmup_runs: int
    warmup_s: float
    min_samples: int
    min_duration_s: float
    max_duration_s: float
    window_tolerance: float = 0.10  # perf_analyzer's default stability percentage
    max_robust_cv: float | None = 0.25

    @property
    def window_size(self) -> int:
        """Samples per convergence window: the count floor covers the three windows."""
        return max(1, math.ceil(self.min_samples / N_WINDOWS))


PROFILES = {
    "standard": StoppingRule(warmup_runs=10, warmup_s=0.2, min_samples=200, min_duration_s=10.0, max_duration_s=60.0),
    "quick": StoppingRule(warmup_runs=5, warmup_s=0.1, min_samples=64, min_duration_s=0.5, max_duration_s=5.0),
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
    hit_cap: bool = False  # sampling stopped at max_duration_s rather than by the rule


def sample_latency(
    query: Callable[[], object],
    rule: StoppingRule,
    clock: Callable[[], float] = time.perf_counter,
    *,
    on_start: Callable[[], object] | None = None,
    on_end: Callable[[], object] | None = None,
) -> Trace:
    """Run ``query`` back to back: warm-up (count AND time), floors, then until the windows agree.

    ``on_start`` runs after the warm-up, just before the first measured query, and ``on_end``
    right after the last (an energy window opens and closes there, so warm-up energy is not
    charged to the measured inferences). Stops early only at ``max_duration_s`` (``hit_cap``).
    """
    warmup: list[float] = []
    start = clock()
    while len(warmup) < rule.warmup_runs or clock() - start < rule.warmup_s:
        t0 = clock()
        query()
        warmup.append(clock() - t0)
    if on_start is not None:
        on_start()
    samples: list[float] = []
    window = rule.window_size
    next_check = 0
    begin = clock()
    while True:
        t0 = clock()
        query()
        t1 = clock()
        samples.append(t1 - t0)
        elapsed = t1 - begin
        if elapsed >= rule.max_duration_s:
            hit_cap = True
            break
        if len(samples) >= max(rule.min_samples, next_check) and elapsed >= rule.min_duration_s:
            p50s = window_p50s(samples, window)
            if relative_spread(p50s) <= rule.window_tolerance:
                hit_cap = False
                break
            next_check = len(samples) + window  # look again once a new window is complete
    if on_end is not None:
        on_end()
    return Trace(warmup, samples, elapsed, hit_cap)


def window_p50s(samples: Sequence[float], window: int) -> list[float]:
    """Nearest-rank p50 of each of the last three windows of ``window`` samples.

    With fewer than three full windows the samples are split into three equal windows
    (the oldest samples left over); fewer than three samples give no windows.
    """
    if len(samples) < N_WINDOWS:
        return []
    size = min(window, len(samples) // N_WINDOWS)
    tail = samples[len(samples) - N_WINDOWS * size:]
    return [nearest_rank(sorted(tail[i * size:(i + 1) * size]), 50) for i in range(N_WINDOWS)]


def relative_spread(values: Sequence[float]) -> float:
    """max / min - 1 (perf_analyzer's stability measure); infinite without values or with a zero."""
    if not values or min(values) <= 0:
        return math.inf
    return max(values) / min(values) - 1.0


@dataclass(frozen=True)
class Stability:
    stability: str  # converged | unstable
    reason: str | None
    cv: float | None
    robust_cv: float | None
    window_size: int
    window_p50_s: list[float]


def assess_stability(trace: Trace, rule: StoppingRule) -> Stability:
    """Judge a finished trace: every failed check adds its reason; none failing means converged."""
    samples = trace.samples_s
    window = rule.window_size
    p50s = window_p50s(samples, window)
    size = min(window, len(samples) // N_WINDOWS) if p50s else 0
    arr = np.asarray(samples, dtype=float)
    cv = float(arr.std(ddof=1) / arr.mean()) if len(arr) > 1 and arr.mean() > 0 else None
    median = float(np.median(arr)) if len(arr) else 0.0
    robust_cv = float(1.4826 * np.median(np.abs(arr - median)) / median) if len(arr) > 1 and median > 0 else None
    reasons = []
    if len(samples) < rule.min_samples:
        reasons.append(
            f"the {rule.max_duration_s:g} s cap (max_duration_s) came after {len(samples)} samples, "
            f"before the floor of {rule.min_samples}"
        )
    elif trace.wall_s < rule.min_duration_s:
        reasons.append(f"the {trace.wall_s:.3g} s of sampling are under the {rule.min_duration_s:g} s floor")
    if not p50s:
        reasons.append(f"{len(samples)} samples are too few to compare {N_WINDOWS} windows")
    elif (spread := relative_spread(p50s)) > rule.window_tolerance:
        shown = ", ".join(f"{v * 1e3:.4g}" for v in p50s)
        reasons.append(
            f"p50 of the last {N_WINDOWS} windows of {size} samples ({shown} ms) spread "
            f"{spread:.1%}, over the {rule.window_tolerance:.0%} tolerance"
            + (f", still at the {rule.max_duration_s:g} s cap" if trace.hit_cap else "")
        )
    if rule.max_robust_cv is not None and robust_cv is not None and robust_cv > rule.max_robust_cv:
        reasons.append(f"robust coefficient of variation (1.4826 MAD / median) {robust_cv:.1%} is over the "
                       f"{rule.max_robust_cv:.0%} bound (max_robust_cv)")
    return Stability(
        stability="unstable" if reasons else "converged",
        reason="; ".join(reasons) or None,
        cv=cv,
        robust_cv=robust_cv,
        window_size=size,
        window_p50_s=p50s,
    )


def bootstrap_ci(
    sorted_values: Sequence[float], percentile: float, *, n_resamples: int, seed: int, level: float = CI_LEVEL,
    chunk: int = 100,
) -> list[float]:
    """Percentile-bootstrap interval ``[low, high]`` of the nearest-rank ``percentile``.

    A resample's k-th smallest value is ``sorted_values`` at the k-th smallest of n random
    indices (the values are sorted), so each resample costs one partition, not a sort.
    """
    values = np.asarray(sorted_values, dtype=float)
    n = len(values)
    if n == 0:
        raise ValueError("no samples")
    k = max(1, math.ceil(percentile / 100.0 * n)) - 1
    rng = np.random.default_rng(seed)
    stats = []
    for start in range(0, n_resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_resamples - start), n))
        stats.append(values[np.partition(idx, k, axis=1)[:, k]])
    boot = np.concatenate(stats)
    alpha = (1.0 - level) / 2.0
    return [float(np.quantile(boot, alpha)), float(np.quantile(boot, 1.0 - alpha))]


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
    trace: Trace,
    *,
    batch_size: int,
    threads: int | None,
    profile: str,
    isolation: str,
    rule: StoppingRule | None = None,
    scenario: str | None = None,
    bootstrap_resamples: int = 1000,
    bootstrap_seed: int = 0,
) -> LatencyStats:
    """Statistics of one trace; with ``rule`` also its stability, with ``scenario`` its headline."""
    ms = sorted(s * 1e3 for s in trace.samples_s)
    arr = np.asarray(ms)
    p90, p90_reason = _tail(ms, 90)
    p99, p99_reason = _tail(ms, 99)
    busy_s = float(np.sum(trace.samples_s))
    stab = assess_stability(trace, rule) if rule is not None else None
    boot = {"n_resamples": bootstrap_resamples, "seed": bootstrap_seed}
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
        scenario=scenario,
        headline_metric=HEADLINE.get(scenario) if scenario else None,
        stability=stab.stability if stab else None,
        unstable_reason=stab.reason if stab else None,
        cv=stab.cv if stab else None,
        robust_cv=stab.robust_cv if stab else None,
        window_size=stab.window_size if stab else None,
        window_p50_ms=[v * 1e3 for v in stab.window_p50_s] if stab else [],
        p50_ci_ms=bootstrap_ci(ms, 50, **boot),
        p90_ci_ms=bootstrap_ci(ms, 90, **boot) if p90 is not None else None,
        ci_level=CI_LEVEL,
        bootstrap_resamples=bootstrap_resamples,
        bootstrap_seed=bootstrap_seed,
    )
