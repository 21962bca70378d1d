"""Seeded percentile bootstrap over test samples, for deltas, CEV and the CIE fraction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.errors import InputError


@dataclass(frozen=True)
class BootstrapCI:
    estimate: float | None  # the statistic on the original samples
    low: float | None  # None when no resample gave a defined value
    high: float | None
    alpha: float
    n_boot: int
    n_valid: int  # resamples on which the statistic was defined (not None / NaN)
    seed: int
    method: str = "percentile"


def _value(x) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


def bootstrap_ci(statistic: Callable[..., float | None], *arrays, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> BootstrapCI:
    """Percentile bootstrap CI [q_{α/2}, q_{1−α/2}] of ``statistic(*arrays)``.

    Each replicate draws N indices with replacement from ``np.random.default_rng(seed)`` and
    applies the same indices to every array along axis 0 (samples resampled jointly; pass a
    population ``[K, N]`` transposed). Replicates where the statistic is ``None`` or NaN (e.g. a
    class absent from the resample) are left out and counted in ``n_valid``. Quantiles use
    numpy's default (linear) interpolation. Same inputs and seed give the same interval.
    """
    if not arrays:
        raise InputError("bootstrap needs at least one array")
    arrs = [np.asarray(a) for a in arrays]
    n = len(arrs[0])
    if n == 0 or any(len(a) != n for a in arrs):
        raise InputError(f"arrays must share a non-empty first axis, got {[a.shape for a in arrs]}")
    if not 0 < alpha < 1 or n_boot < 1:
        raise InputError(f"need 0 < alpha < 1 and n_boot ≥ 1, got {alpha}, {n_boot}")
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        v = _value(statistic(*(a[idx] for a in arrs)))
        if v is not None:
            stats.append(v)
    low = high = None
    if stats:
        low, high = (float(q) for q in np.quantile(stats, [alpha / 2, 1 - alpha / 2]))
    return BootstrapCI(_value(statistic(*arrs)), low, high, alpha, n_boot, len(stats), seed)


def significant(ci: BootstrapCI) -> bool:
    """True when the interval excludes 0 (low > 0 or high < 0); an undefined interval is not significant."""
    return ci.low is not None and ci.high is not None and (ci.low > 0 or ci.high < 0)
