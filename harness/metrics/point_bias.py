"""The bias record of one operating point, from the predictions of two populations.

``dense`` and ``comp`` are ``[K, N]`` predicted labels of the dense and compressed models
of K seeds (row 0: the primary model, the one that is deployed and timed). This module
only composes the metrics of :mod:`harness.metrics`; their formulas live there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.metrics.bias import cev_sde, cie_report, disproportionate_impact, modal_cie, modal_labels, taxicab_scores
from harness.metrics.calibration import ece, ece_sweep, softmax, uncertain_share
from harness.metrics.susceptibility import dense_scores, predictive_power
from harness.records import BiasStats

N_BOOT = 200
SEED = 0


def _recalls(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    support = np.bincount(y, minlength=n_classes)
    hits = np.bincount(y[pred == y], minlength=n_classes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(support > 0, hits / np.maximum(support, 1), np.nan)


def _interval(values: list[float]) -> list[float] | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if len(finite) < 2:
        return None
    low, high = np.quantile(finite, [0.025, 0.975])
    return [float(low), float(high)]


def bias_stats(
    y: np.ndarray,
    dense: np.ndarray,
    comp: np.ndarray,
    comp_logits: np.ndarray,
    class_names: list[str],
    *,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    dense_logits: np.ndarray | None = None,
) -> BiasStats:
    """``dense_logits`` ([K, N, C]) adds Iofinova et al.'s check: does the dense population's
    uncertainty (1 - mean top-1 probability) predict CIE membership (AUROC)?"""
    y = np.asarray(y)
    dense, comp = np.atleast_2d(dense), np.atleast_2d(comp)
    n_classes, n = len(class_names), len(y)
    cs = cev_sde(y, dense[0], comp, n_classes)
    cie = modal_cie(dense, comp)
    report = cie_report(cie, y, dense, comp)
    probs = softmax(comp_logits)
    susceptibility = None
    if dense_logits is not None and 0 < report.n_cie < n:
        susceptibility = predictive_power(dense_scores(softmax(dense_logits)).uncertainty, cie).auroc
    impact = disproportionate_impact(
        dict(zip(class_names, _recalls(y, dense[0], n_classes).tolist(), strict=True)),
        dict(zip(class_names, _recalls(y, comp[0], n_classes).tolist(), strict=True)),
        float(np.mean(dense[0] == y)),
        float(np.mean(comp[0] == y)),
    )

    # one bootstrap loop for every interval: samples resampled jointly
    rng = np.random.default_rng(seed)
    deltas, cevs, cie_fracs = [], [], []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        yb = y[idx]
        deltas.append(_recalls(yb, comp[0, idx], n_classes) - _recalls(yb, dense[0, idx], n_classes))
        cevs.append(cev_sde(yb, dense[0, idx], comp[:, idx], n_classes).cev)
        cie_fracs.append(float(cie[idx].mean()))
    deltas_arr = np.asarray(deltas)
    delta_ci = {name: _interval(deltas_arr[:, c].tolist()) for c, name in enumerate(class_names)}
    return BiasStats(
        population_size=int(comp.shape[0]),
        cev=None if cs.cev is None else float(cs.cev),
        sde=None if cs.sde is None else float(cs.sde),
        cev_dropped_classes=[class_names[c] for c in cs.dropped_classes],
        cev_ci=_interval(cevs),
        cie_fraction=report.fraction,
        n_cie=report.n_cie,
        cie_plain_disagreement=report.plain_disagreement,
        cie_ci=_interval(cie_fracs),
        cie_error_share=report.comp.error_share,
        cie_class_rel_rep={class_names[c]: r.rel_rep for c, r in sorted(report.by_class.items())},
        ece=ece(probs, y),
        ece_sweep=ece_sweep(probs, y).ece if n >= 2 else None,
        uncertain_share=uncertain_share(probs).overall,
        n_classes_hurt=impact.n_classes_hurt,
        susceptibility_auroc=susceptibility,
        per_class_delta_ci=delta_ci,
        per_class_delta_significant={k: ci is not None and (ci[0] > 0 or ci[1] < 0) for k, ci in delta_ci.items()},
        n_boot=n_boot,
    )


def cie_audit_rows(
    y: np.ndarray, sample_index: np.ndarray, dense: np.ndarray, comp: np.ndarray, class_names: list[str],
    groups: dict[str, tuple[np.ndarray, list[str]]] | None = None,
) -> list[dict[str, Any]]:
    """The CIE examples ranked by taxicab score (most disagreement first): the audit list of Hooker et al."""
    dense, comp = np.atleast_2d(dense), np.atleast_2d(comp)
    cie = modal_cie(dense, comp)
    score = taxicab_scores(dense, comp, len(class_names))
    dense_modal, comp_modal = modal_labels(dense, n_classes=len(class_names)), modal_labels(comp, n_classes=len(class_names))
    order = [i for i in np.argsort(-score, kind="stable") if cie[i]]
    rows = []
    for rank, i in enumerate(order, start=1):
        row = {
            "rank": rank,
            "position": int(i),  # row in the evaluation split
            "sample_index": int(sample_index[i]),  # index in the source dataset
            "label": class_names[int(y[i])],
            "dense_modal": class_names[int(dense_modal[i])],
            "compressed_modal": class_names[int(comp_modal[i])],
            "taxicab_score": float(score[i]),
        }
        for attr, (values, levels) in (groups or {}).items():
            row[attr] = levels[int(values[i])]
        rows.append(row)
    return rows
