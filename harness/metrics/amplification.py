"""Directional bias amplification and the threshold-calibration countermeasure.

- BiasAmp→: Wang & Russakovsky, "Directional Bias Amplification", ICML 2021; reference
  ``princetonvisualai/directional-bias-amp`` (``directional_biasamp.py``).
- Per-attribute thresholds: Iofinova, Peste, Alistarh 2023, reference ``IST-DASLab/pruned-vision-model-bias``.

All label and prediction matrices are binary, one row per sample: tasks ``[n, |T|]``,
attributes ``[n, |A|]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.errors import InputError


def _binary(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    a = a[:, None] if a.ndim == 1 else a
    if a.ndim != 2 or not np.isin(a, (0, 1)).all():
        raise InputError(f"{name} must be a binary [n, k] matrix, got shape {np.shape(x)}")
    return a.astype(np.int64)


@dataclass(frozen=True, eq=False)
class BiasAmplification:
    value: float | None  # nanmean over (a, t) of y_at·Δ_at; None when no pair is defined
    direction: str
    y_at: np.ndarray  # [|A|, |T|] in {−1, 0, +1}
    delta: np.ndarray  # [|A|, |T|] Δ_at, NaN where the conditioning set is empty
    n_pairs: int  # pairs entering the mean


def biasamp_directional(task_y, attr_y, preds, direction: Literal["A->T", "T->A"] = "A->T",
                        task_y_train=None, attr_y_train=None,
                        indicator_rows: Literal["task_or_attribute", "task", "all"] = "task_or_attribute",
                        ) -> BiasAmplification:
    """BiasAmp→ = mean over (a, t) of y_at·Δ_at, NaN pairs excluded (Wang & Russakovsky 2021).

    y_at = sign(P(A_a=1, T_t=1) − P(A_a=1)·P(T_t=1)) on the training labels if given, else the
    test labels, restricted by ``indicator_rows``: ``"task_or_attribute"`` (default, the spec:
    rows with a positive task or attribute), ``"task"`` (what the reference code at 0719b9b
    literally computes: its union repeats the task labels), ``"all"`` (every row, whatever its labels).
    The sign is taken on exact integer counts, n·n_at − n_a·n_t.

    A->T (``preds`` = task predictions): Δ_at = P(T̂_t=1 | A_a=1) − P(T_t=1 | A_a=1).
    T->A (``preds`` = attribute predictions): Δ_at = P(Â_a=1 | T_t=1) − P(A_a=1 | T_t=1).
    Test-set probabilities. y_at = 0 (exact independence) gives 0, where the paper's 0/1
    indicator form would give −Δ. Identical predictions and labels give 0.
    """
    if direction not in ("A->T", "T->A") or indicator_rows not in ("task_or_attribute", "task", "all"):
        raise InputError(f"unknown direction {direction!r} or indicator_rows {indicator_rows!r}")
    t, a, pr = _binary(task_y, "task_y"), _binary(attr_y, "attr_y"), _binary(preds, "preds")
    if len(t) != len(a) or pr.shape != (t if direction == "A->T" else a).shape:
        raise InputError(f"shapes differ: tasks {t.shape}, attributes {a.shape}, predictions {pr.shape}")
    if (task_y_train is None) != (attr_y_train is None):
        raise InputError("give both training label matrices or neither")
    tt, at = (t, a)
    if task_y_train is not None:
        tt, at = _binary(task_y_train, "task_y_train"), _binary(attr_y_train, "attr_y_train")
    rows = {"all": np.ones(len(tt), bool), "task": tt.sum(1) > 0,
            "task_or_attribute": (tt.sum(1) > 0) | (at.sum(1) > 0)}[indicator_rows]
    tt, at = tt[rows], at[rows]
    y_at = np.sign(len(tt) * (at.T @ tt) - np.outer(at.sum(0), tt.sum(0)))

    def cond(num: np.ndarray, den: np.ndarray) -> np.ndarray:  # P(x=1 | cond=1) per pair, NaN if empty
        return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)

    if direction == "A->T":
        n_a = a.sum(0)[:, None].astype(float)
        delta = cond((a.T @ pr).astype(float), n_a) - cond((a.T @ t).astype(float), n_a)
    else:
        n_t = t.sum(0)[None, :].astype(float)
        delta = cond((pr.T @ t).astype(float), n_t) - cond((a.T @ t).astype(float), n_t)
    values = y_at * delta
    ok = ~np.isnan(values)
    for arr in (y_at, delta):
        arr.setflags(write=False)
    return BiasAmplification(float(values[ok].mean()) if ok.any() else None, direction, y_at, delta, int(ok.sum()))


def calibrate_thresholds(val_logits, val_y) -> np.ndarray:
    """Per-attribute thresholds matching the validation positive count (Iofinova et al. 2023):
    k_a = round(Σ_i y_ia), t_a = k_a-th largest validation logit (``np.partition(z, −k)[−k]``);
    k_a = 0 gives t_a = +∞ (nothing predicted positive). Predict with z > t_a (strict), so about
    k_a − 1 validation positives are predicted ((k_a − 1)/N_val exactly when logits are distinct).
    """
    z, y = np.asarray(val_logits, float), np.asarray(val_y, float)
    z, y = (z[:, None], y[:, None]) if z.ndim == 1 else (z, y)
    if z.ndim != 2 or z.shape != y.shape or not len(z):
        raise InputError(f"validation logits {z.shape} and labels {y.shape} must be the same [N, A]")
    t = np.full(z.shape[1], np.inf)
    for j in range(z.shape[1]):
        k = int(np.rint(y[:, j].sum()))
        if k > 0:
            t[j] = np.partition(z[:, j], -k)[-k]
    return t


def apply_thresholds(logits, thresholds) -> np.ndarray:
    """ŷ_ia = 1[z_ia > t_a] (strict, as the reference code), int [N, A]."""
    z = np.asarray(logits, float)
    return (z > np.asarray(thresholds, float)).astype(np.int64)
