"""Bias of a compressed population against its dense baseline.

- CEV / SDE: Blakeney, Huish, Yan, Zong 2021, "Simon Says" (arXiv 2106.07849), reference code
  ``codestar12/pruning-distilation-bias``.
- Compression Identified Exemplars (modal CIE, taxicab score, CIE report): Hooker, Moorosi,
  Clark, Bengio, Denton 2020; mechanics from the PIE code (google-research
  ``pruning_identified_exemplars``).
- Disproportionate impact: Paganini 2020, "Prune Responsibly".

Populations are prediction matrices ``preds[K, N]`` (K seeds); a 1-D vector is K = 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.errors import InputError
from harness.metrics.groups import confusion_matrix, one_vs_rest_counts


def _population(preds, name: str, n: int | None = None) -> np.ndarray:
    p = np.asarray(preds)
    p = p[None, :] if p.ndim == 1 else p
    if p.ndim != 2 or p.shape[0] == 0 or (n is not None and p.shape[1] != n):
        raise InputError(f"{name} must be [K, N] predictions{f' with N = {n}' if n else ''}, got {np.shape(preds)}")
    if p.size and p.min() < 0:
        raise InputError(f"{name} holds negative labels")
    return p.astype(np.int64)


def _safe_div(num, den) -> np.ndarray:
    num, den = np.asarray(num, float), np.asarray(den, float)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den != 0)


def _fpr_fnr(y, pred, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    tp, fp, fn, tn = one_vs_rest_counts(confusion_matrix(y, pred, n_classes))
    return _safe_div(fp, fp + tn), _safe_div(fn, fn + tp)  # NaN where undefined


# ---------------------------------------------------------------- CEV / SDE (Blakeney et al.)

@dataclass(frozen=True, eq=False)
class CevSde:
    cev: float | None  # None when every class was dropped
    sde: float | None
    points: np.ndarray  # [C_kept, 2]: (x_c, y_c) relative change of FPR_c and FNR_c
    classes: tuple[int, ...]  # class index of each row of ``points``
    dropped_classes: tuple[int, ...]  # zero or undefined baseline FPR or FNR
    variant: str
    n_models: int


def cev_sde(y, pred_base, preds_comp, n_classes: int, variant: Literal["reference", "normalised"] = "reference",
            zero_rate: Literal["drop", "epsilon"] = "drop", eps: float = 1e-6) -> CevSde:
    """Combined Error Variance and Symmetric Distance Error (Blakeney et al. 2021, "Simon Says").

    FPR_t, FNR_t: one-vs-rest rates of the single baseline model; the compressed rates are
    averaged over the K models first (mFPR_c = mean_k FPR_k,c), so CEV(mean) ≠ mean(CEV).
    x_c = s·(mFPR_c − FPR_t,c)/FPR_t,c, y_c = s·(mFNR_c − FNR_t,c)/FNR_t,c.

    - ``variant="reference"`` (default; the authors' code that produced the published tables):
      s = 100 (percent); CEV = ½·[Var(x) + Var(y)] (sklearn ``mean_squared_error`` to the
      centroid, uniform over 2 outputs, ddof 0); SDE = mean_c |x_c − y_c| / √2.
    - ``variant="normalised"`` (the third-party form citing the NAS 2022 paper): s = 1 (fractions),
      CEV = (1/C) Σ ‖p_c − p̄‖² = Var(x) + Var(y), SDE = mean_c |x_c − y_c|. Hence
      CEV_norm = 2·CEV_ref/100² and SDE_norm = √2·SDE_ref/100.

    Zero baseline rate: the reference code divides anyway (inf/NaN). ``zero_rate="drop"`` (default)
    leaves such classes out and lists them in ``dropped_classes``; ``"epsilon"`` divides by
    rate + eps instead. Classes whose rate is undefined (0/0: no support) are always dropped.
    """
    if variant not in ("reference", "normalised") or zero_rate not in ("drop", "epsilon"):
        raise InputError(f"unknown variant {variant!r} or zero_rate {zero_rate!r}")
    y = np.asarray(y)
    comp = _population(preds_comp, "preds_comp", len(y))
    fpr_t, fnr_t = _fpr_fnr(y, np.asarray(pred_base), n_classes)
    rates = [_fpr_fnr(y, p, n_classes) for p in comp]
    mfpr, mfnr = np.mean([r[0] for r in rates], axis=0), np.mean([r[1] for r in rates], axis=0)
    undefined = np.isnan(fpr_t) | np.isnan(fnr_t)
    zero = (fpr_t == 0) | (fnr_t == 0)
    keep = ~undefined & ~zero if zero_rate == "drop" else ~undefined
    scale = 100.0 if variant == "reference" else 1.0
    shift = eps if zero_rate == "epsilon" else 0.0
    x = scale * (mfpr[keep] - fpr_t[keep]) / (fpr_t[keep] + shift)
    yy = scale * (mfnr[keep] - fnr_t[keep]) / (fnr_t[keep] + shift)
    points = np.stack([x, yy], axis=1)
    points.setflags(write=False)
    cev = sde = None
    if keep.any():
        total_var = float(np.var(x) + np.var(yy))
        mean_abs = float(np.mean(np.abs(x - yy)))
        cev, sde = (total_var / 2, mean_abs / np.sqrt(2)) if variant == "reference" else (total_var, mean_abs)
    return CevSde(cev, sde, points, tuple(int(c) for c in np.flatnonzero(keep)),
                  tuple(int(c) for c in np.flatnonzero(~keep)), variant, comp.shape[0])


def pie_all_disagree(pred_base, preds_comp) -> int:
    """Simon Says' "PIE" count (not Hooker's): |∩_k {i : pred_k(i) ≠ pred_base(i)}|."""
    base = np.asarray(pred_base)
    return int(np.all(_population(preds_comp, "preds_comp", len(base)) != base[None, :], axis=0).sum())


# ---------------------------------------------------------------- CIE (Hooker et al. 2020)

def _counts(preds: np.ndarray, n_classes: int) -> np.ndarray:
    k, n = preds.shape
    flat = (np.arange(n)[None, :] * n_classes + preds).ravel()
    return np.bincount(flat, minlength=n * n_classes).reshape(n, n_classes)


def modal_labels(preds, tie: Literal["max", "min"] = "max", n_classes: int | None = None) -> np.ndarray:
    """Most frequent label per example over the population, [K, N] -> [N].

    Ties: ``"max"`` takes the largest tied label, as the PIE reference code does (pandas
    ``mode().max()``); ``"min"`` the smallest. Use odd K to avoid ties on binary tasks.
    """
    p = _population(preds, "preds")
    c = n_classes or (int(p.max()) + 1 if p.size else 1)
    counts = _counts(p, c)
    if tie == "max":
        return c - 1 - np.argmax(counts[:, ::-1], axis=1)
    if tie == "min":
        return np.argmax(counts, axis=1)
    raise InputError(f"unknown tie rule {tie!r}")


def modal_cie(base, comp, tie: Literal["max", "min"] = "max") -> np.ndarray:
    """CIE_i = modal_comp(i) ≠ modal_base(i) (Hooker et al. 2020). bool[N]; true labels play no part.
    With K = 1 on both sides this is plain disagreement."""
    b, c = _population(base, "base"), _population(comp, "comp")
    if b.shape[1] != c.shape[1]:
        raise InputError(f"populations cover {b.shape[1]} and {c.shape[1]} examples")
    n_classes = int(max(b.max(initial=0), c.max(initial=0))) + 1
    return modal_labels(b, tie, n_classes) != modal_labels(c, tie, n_classes)


def taxicab_scores(base, comp, n_classes: int) -> np.ndarray:
    """d(i) = Σ_c |p_comp(i,c) − p_base(i,c)| in [0, 2], p(i,c) = share of the population predicting c."""
    b = _population(base, "base")
    c = _population(comp, "comp", b.shape[1])
    return np.abs(_counts(c, n_classes) / c.shape[0] - _counts(b, n_classes) / b.shape[0]).sum(axis=1)


def taxicab_cie(base, comp, n_classes: int, q: float | None = None, tie: Literal["max", "min"] = "max") -> np.ndarray:
    """Top round(q·N) examples by taxicab score d(i), ties by index. [PROPOSED in the spec: the
    paper's threshold was not retrieved] q=None takes as many as the modal CIE holds."""
    d = taxicab_scores(base, comp, n_classes)
    m = int(modal_cie(base, comp, tie).sum()) if q is None else int(round(q * len(d)))
    out = np.zeros(len(d), bool)
    out[np.argsort(-d, kind="stable")[:m]] = True
    return out


@dataclass(frozen=True)
class Representation:
    """share_cie = |CIE ∩ g|/|CIE|, share_all = |g|/N, rel_rep = share_cie/share_all (> 1:
    over-indexed), diff_pp = 100·(share_cie − share_all). The paper's normalisation is
    unverified, so both are reported."""

    n_all: int
    n_cie: int
    share_all: float
    share_cie: float | None
    rel_rep: float | None
    diff_pp: float | None


@dataclass(frozen=True)
class PopulationOnCie:
    """Accuracy on CIE and off it: mean over the K models, and of the modal label. ``error_share``:
    errors on CIE / all errors, pooled over the K models."""

    k: int
    accuracy_cie: float | None
    accuracy_rest: float | None
    modal_accuracy_cie: float | None
    modal_accuracy_rest: float | None
    error_share: float | None


@dataclass(frozen=True)
class GroupErrorRates:
    """Binary task: FPR_g = P(ŷ=1 | y=0, g), FNR_g = P(ŷ=0 | y=1, g), averaged over each population."""

    fpr_base: float | None
    fpr_comp: float | None
    fnr_base: float | None
    fnr_comp: float | None
    fpr_delta: float | None  # comp − base
    fnr_delta: float | None
    fpr_rel_delta: float | None  # (comp − base) / base
    fnr_rel_delta: float | None


@dataclass(frozen=True)
class CieReport:
    n_samples: int
    n_cie: int
    fraction: float
    plain_disagreement: bool  # K = 1 on both sides: the "CIE" is plain disagreement
    base: PopulationOnCie
    comp: PopulationOnCie
    n_comp_modal_correct: int  # CIEs where the compressed modal label is right (PIE "pruned-correct")
    by_class: dict[int, Representation]
    by_group: dict[str, Representation]
    group_error_rates: dict[str, GroupErrorRates]  # binary tasks only; empty otherwise


def _f(x) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


def _population_on(cie, y, preds, modal) -> PopulationOnCie:
    correct = preds == y[None, :]

    def acc(mask):
        return _f(correct[:, mask].mean()) if mask.any() else None

    errors = int((~correct).sum())
    return PopulationOnCie(preds.shape[0], acc(cie), acc(~cie),
                           _f((modal == y)[cie].mean()) if cie.any() else None,
                           _f((modal == y)[~cie].mean()) if (~cie).any() else None,
                           int((~correct)[:, cie].sum()) / errors if errors else None)


def _representation(mask, cie) -> Representation:
    n, n_cie, n_g = len(cie), int(cie.sum()), int(mask.sum())
    share_all = n_g / n
    share_cie = int((mask & cie).sum()) / n_cie if n_cie else None
    return Representation(n_g, int((mask & cie).sum()), share_all, share_cie,
                          share_cie / share_all if share_cie is not None and share_all else None,
                          100 * (share_cie - share_all) if share_cie is not None else None)


def _rate(preds, y, mask, truth: int) -> float | None:
    """Population-mean share of examples with label ``truth`` in ``mask`` predicted otherwise."""
    sel = mask & (y == truth)
    return _f(np.mean(preds[:, sel] != truth)) if sel.any() else None


def cie_report(cie, y, preds_base, preds_comp, groups: Mapping[str, np.ndarray] | None = None,
               tie: Literal["max", "min"] = "max", n_classes: int | None = None) -> CieReport:
    """The metrics reported around CIE (Hooker et al. 2020, [RECALL] in the spec).

    ``groups``: ``{name: bool[N]}`` (see :func:`harness.metrics.groups.group_masks`). Classes
    (by true label) are always reported in ``by_class``. Per-group FPR/FNR are computed when the
    task is binary (``n_classes == 2``, or labels and predictions all in {0, 1}).
    """
    cie, y = np.asarray(cie, bool), np.asarray(y).astype(np.int64)
    base, comp = _population(preds_base, "preds_base", len(y)), _population(preds_comp, "preds_comp", len(y))
    if cie.shape != y.shape or not len(y):
        raise InputError(f"cie {cie.shape} and labels {y.shape} must be equal-length, non-empty vectors")
    c = n_classes or int(max(y.max(), base.max(), comp.max())) + 1
    modal_b, modal_c = modal_labels(base, tie, c), modal_labels(comp, tie, c)
    masks = {str(k): np.asarray(v, bool) for k, v in (groups or {}).items()}
    rates = {}
    if c == 2:
        for name, m in masks.items():
            fb, fc = _rate(base, y, m, 0), _rate(comp, y, m, 0)
            nb, nc = _rate(base, y, m, 1), _rate(comp, y, m, 1)

            def d(a, b):
                return None if a is None or b is None else b - a

            def r(a, b):
                return None if a is None or b is None or a == 0 else (b - a) / a

            rates[name] = GroupErrorRates(fb, fc, nb, nc, d(fb, fc), d(nb, nc), r(fb, fc), r(nb, nc))
    return CieReport(
        n_samples=len(y), n_cie=int(cie.sum()), fraction=float(cie.mean()),
        plain_disagreement=base.shape[0] == 1 and comp.shape[0] == 1,
        base=_population_on(cie, y, base, modal_b), comp=_population_on(cie, y, comp, modal_c),
        n_comp_modal_correct=int((cie & (modal_c == y)).sum()),
        by_class={k: _representation(y == k, cie) for k in range(c)},
        by_group={name: _representation(m, cie) for name, m in masks.items()},
        group_error_rates=rates,
    )


# ---------------------------------------------------------------- disproportionate impact (Paganini)

@dataclass(frozen=True)
class DisproportionateImpact:
    top1_delta: float  # acc_comp − acc_dense
    per_class_delta: dict[str, float | None]  # r_comp,c − r_dense,c; None if either is undefined
    classes_hurt: tuple[str, ...]  # Δ_c < Δacc (relative: Δ_c/r_dense,c < Δacc/acc_dense)
    n_classes_hurt: int
    worst_class: str | None
    worst_class_drop: float | None  # max_c (r_dense,c − r_comp,c)
    relative: bool


def _recalls(r) -> dict[str, float | None]:
    items = r.items() if isinstance(r, Mapping) else enumerate(r)
    return {str(k): None if v is None or np.isnan(v) else float(v) for k, v in items}


def disproportionate_impact(per_class_recall_dense: Mapping[str, float | None] | Sequence[float],
                            per_class_recall_comp: Mapping[str, float | None] | Sequence[float],
                            top1_dense: float, top1_comp: float, relative: bool = False) -> DisproportionateImpact:
    """Classes "left behind" by compression (Paganini 2020): #{c : Δ_c < Δacc} with
    Δ_c = r_comp,c − r_dense,c and Δacc = top1_comp − top1_dense; worst-class drop max_c(−Δ_c).

    Not the same as ``AccuracyStats.worst_class_drop`` (dense worst recall minus compressed worst
    recall, possibly two different classes). Classes with undefined recall (None/NaN) are skipped.
    """
    dense, comp = _recalls(per_class_recall_dense), _recalls(per_class_recall_comp)
    if dense.keys() != comp.keys():
        raise InputError("dense and compressed recalls name different classes")
    delta = {k: None if (d := dense[k]) is None or (c := comp[k]) is None else c - d for k in dense}
    d_acc = top1_comp - top1_dense
    if relative:
        bar = d_acc / top1_dense if top1_dense else None
        hurt = tuple(k for k, v in delta.items() if v is not None and bar is not None and (d := dense[k])
                     and v / d < bar)
    else:
        hurt = tuple(k for k, v in delta.items() if v is not None and v < d_acc)
    defined = {k: -v for k, v in delta.items() if v is not None}
    worst = max(defined, key=lambda k: defined[k]) if defined else None
    return DisproportionateImpact(d_acc, delta, hurt, len(hurt), worst,
                                  defined[worst] if worst is not None else None, relative)
