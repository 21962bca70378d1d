"""Susceptibility from the dense model alone (Iofinova, Peste, Alistarh 2023, §5.3 of the spec).

The paper says dense-model uncertainty predicts which samples compression hurts; its exact
criteria are [RECALL]/[PROPOSED] in the spec. The harness scores every sample with the dense
population and measures how well the score predicts CIE membership (AUROC, and precision and
recall of the flagged set).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import InputError


@dataclass(frozen=True, eq=False)
class SusceptibilityScores:
    uncertainty: np.ndarray  # [N] 1 − mean_k max_c p_k(i, c): higher = more at risk
    margin: np.ndarray  # [N] p̄_(1) − p̄_(2) of the population-mean probabilities: lower = more at risk
    n_models: int


def dense_scores(probs) -> SusceptibilityScores:
    """Per-sample scores from a dense population's probabilities ``[K, N, C]`` (or ``[N, C]``, K = 1).
    Binary sigmoid outputs must be given as two columns (1 − p, p)."""
    p = np.asarray(probs, float)
    p = p[None] if p.ndim == 2 else p
    if p.ndim != 3 or p.shape[0] == 0 or p.shape[2] < 2:
        raise InputError(f"probabilities must be [K, N, C] or [N, C] with C ≥ 2, got {np.shape(probs)}")
    mean = np.sort(p.mean(axis=0), axis=1)
    unc, margin = 1 - p.max(axis=2).mean(axis=0), mean[:, -1] - mean[:, -2]
    unc.setflags(write=False)
    margin.setflags(write=False)
    return SusceptibilityScores(unc, margin, p.shape[0])


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def auroc(score, positive) -> float | None:
    """Area under the ROC curve by the Mann–Whitney statistic:
    AUROC = (R₊ − n₊(n₊+1)/2) / (n₊·n₋), R₊ = sum of the positives' average ranks (ties count ½).
    ``None`` when either class is absent."""
    s, pos = np.asarray(score, float), np.asarray(positive, bool)
    if s.shape != pos.shape or s.ndim != 1:
        raise InputError(f"scores {s.shape} and labels {pos.shape} must be equal-length vectors")
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return None
    return float((_average_ranks(s)[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class PredictivePower:
    auroc: float | None
    n_flagged: int  # size of the flagged (most at-risk) set
    precision: float | None  # |flagged ∩ CIE| / |flagged|
    recall: float | None  # |flagged ∩ CIE| / |CIE|
    base_rate: float  # |CIE| / N
    lift: float | None  # precision / base_rate


def predictive_power(score, is_cie, q: float | None = None, flagged=None) -> PredictivePower:
    """How well a dense-only score (higher = more at risk; pass −margin for the margin) predicts CIE.

    Flagged set: ``flagged`` (e.g. :func:`harness.metrics.calibration.is_uncertain`, Iofinova's
    p ∈ (0.1, 0.9)) if given, else the top round(q·N) by score, ties by index; q=None [PROPOSED
    default] uses q = |CIE|/N, so precision = recall.
    """
    s, cie = np.asarray(score, float), np.asarray(is_cie, bool)
    auc = auroc(s, cie)
    n, n_cie = len(s), int(cie.sum())
    if not n:
        raise InputError("no samples")
    if flagged is None:
        m = int(round((n_cie / n if q is None else q) * n))
        flagged = np.zeros(n, bool)
        flagged[np.argsort(-s, kind="stable")[:m]] = True
    flagged = np.asarray(flagged, bool)
    if flagged.shape != cie.shape:
        raise InputError(f"flagged set {flagged.shape} and CIE {cie.shape} differ in shape")
    hit = int((flagged & cie).sum())
    precision = hit / int(flagged.sum()) if flagged.any() else None
    base = n_cie / n
    return PredictivePower(auc, int(flagged.sum()), precision, hit / n_cie if n_cie else None, base,
                           precision / base if precision is not None and base else None)
