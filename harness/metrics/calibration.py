"""Calibration and uncertainty: top-label ECE, ECE_sweep, share of uncertain predictions.

Inputs: ``probs[N, C]`` (softmax) with integer labels ``y[N]``: top-label confidence
f_i = max_c p_ic and outcome o_i = 1[argmax_c p_ic = y_i]. A 1-D ``probs[N]`` is one binary
(or one-vs-rest) score f_i = P(positive) with outcome o_i = y_i ∈ {0, 1}. NaN scores are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.errors import InputError


def softmax(logits, axis: int = -1) -> np.ndarray:
    """p = exp(z − max z) / Σ exp(z − max z) (shifted for stability)."""
    z = np.asarray(logits, float)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _scores(probs, y) -> tuple[np.ndarray, np.ndarray]:
    p, y = np.asarray(probs, float), np.asarray(y)
    if p.ndim not in (1, 2) or y.shape != p.shape[:1]:
        raise InputError(f"probabilities {p.shape} must be [N] or [N, C] with N = len(labels) {y.shape}")
    if p.ndim == 2:
        f, o = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.int64)
    else:
        f, o = p, y.astype(np.int64)
    keep = ~np.isnan(f)
    if not keep.any():
        raise InputError("no finite scores to calibrate")
    return f[keep], o[keep]


def _weighted_gap(bins: np.ndarray, f: np.ndarray, o: np.ndarray, n_bins: int, p: float) -> float:
    """(Σ_b (n_b/N)·|ȳ_b − f̄_b|^p)^(1/p) over non-empty bins."""
    n_b = np.bincount(bins, minlength=n_bins)
    nz = n_b > 0
    f_b = np.bincount(bins, weights=f, minlength=n_bins)[nz] / n_b[nz]
    y_b = np.bincount(bins, weights=o, minlength=n_bins)[nz] / n_b[nz]
    return float(np.sum(n_b[nz] / len(f) * np.abs(y_b - f_b) ** p) ** (1 / p))


def _ew_bins(f: np.ndarray, n_bins: int) -> np.ndarray:
    return np.clip(np.floor(f * n_bins), 0, n_bins - 1).astype(np.int64)


def ece(probs, y, n_bins: int = 15) -> float:
    """Expected calibration error with equal-width bins (Guo et al. 2017):
    ECE = Σ_b (n_b/N)·|acc_b − conf_b|, bin(i) = min(B−1, ⌊f_i·B⌋) (so f = 1 joins the last bin)."""
    if n_bins < 1:
        raise InputError("n_bins must be ≥ 1")
    f, o = _scores(probs, y)
    return _weighted_gap(_ew_bins(f, n_bins), f, o, n_bins, 1.0)


@dataclass(frozen=True)
class EceSweep:
    ece: float
    n_bins: int  # the bin count the sweep settled on
    scheme: str
    p: float
    n_samples: int


def ece_sweep(probs, y, scheme: Literal["em", "ew"] = "em", p: float = 2.0) -> EceSweep:
    """ECE_sweep (Roelofs, Cain, Shlens, Mozer; reference ``google-research/caltrain``).

    Sort by f (stable sort, so ties keep index order). For b = 2, 3, …, N−1 bin the examples,
    equal mass ("em", recommended): bin(i) = min(b−1, ⌊rank(i)·b/N⌋), or equal width ("ew"):
    bin(i) = min(b−1, ⌊f_i·b⌋). The binning is monotonic when the bin means ȳ never decrease
    over the non-empty bins. Stop at the first non-monotonic b and keep b−1 (1 bin if b = 2
    fails; N−1 if none fails). ECE_sweep = (Σ_bins (n_b/N)·|ȳ_b − f̄_b|^p)^(1/p).
    p = 2 is the reference default; p = 1 is on the usual ECE scale. Bin edges use exact integer
    arithmetic (the reference computes ⌊(r/N)·b⌋ in floating point).
    """
    if scheme not in ("em", "ew") or p <= 0:
        raise InputError(f"unknown scheme {scheme!r} or non-positive p {p}")
    f, o = _scores(probs, y)
    order = np.argsort(f, kind="stable")
    f, o = f[order], o[order]
    n = len(f)
    cum_o = np.concatenate([[0], np.cumsum(o)])  # integer outcomes: exact bin sums

    def edges(b: int) -> np.ndarray:
        if scheme == "em":
            return -(-np.arange(b + 1) * n // b)  # ceil(j·N/b): first rank of bin j
        return np.searchsorted(_ew_bins(f, b), np.arange(b + 1), side="left")

    def monotonic(b: int) -> bool:
        e = edges(b)
        counts = np.diff(e)
        nz = counts > 0
        means = np.diff(cum_o[e])[nz] / counts[nz]
        return bool(np.all(np.diff(means) >= 0))

    best = 1
    for b in range(2, n):
        if not monotonic(b):
            break
        best = b
    bins = np.repeat(np.arange(best), np.diff(edges(best)))
    return EceSweep(_weighted_gap(bins, f, o, best, p), best, scheme, float(p), n)


def is_uncertain(probs, threshold: float = 0.9) -> np.ndarray:
    """bool[N]: top-label confidence < threshold. For a 1-D binary score the confidence is
    max(p, 1−p), so threshold 0.9 gives Iofinova et al.'s p ∈ (0.1, 0.9) (|p − 0.5| < 0.4)."""
    p = np.asarray(probs, float)
    if p.ndim == 1:
        return np.maximum(p, 1 - p) < threshold
    if p.ndim == 2:
        return p.max(axis=1) < threshold
    raise InputError(f"probabilities must be [N] or [N, C], got {p.shape}")


@dataclass(frozen=True)
class UncertainShare:
    threshold: float
    overall: float
    per_class: dict[int, float | None]  # None: no example of that class
    basis: str  # "true" (class of the label) or "predicted" (argmax)


def uncertain_share(probs, threshold: float = 0.9, y=None) -> UncertainShare:
    """Share of predictions with confidence < threshold, overall and per class: by true class
    when labels ``y`` are given, else by predicted class."""
    p = np.asarray(probs, float)
    unc = is_uncertain(p, threshold)
    if not len(unc):
        raise InputError("no predictions")
    pred = (p >= 0.5).astype(np.int64) if p.ndim == 1 else p.argmax(axis=1)
    n_classes = 2 if p.ndim == 1 else p.shape[1]
    cls = pred if y is None else np.asarray(y).astype(np.int64)
    per = {c: float(unc[cls == c].mean()) if np.any(cls == c) else None for c in range(n_classes)}
    return UncertainShare(float(threshold), float(unc.mean()), per, "predicted" if y is None else "true")
