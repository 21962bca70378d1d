"""The bias record of one operating point, from the predictions of two populations.

``dense`` and ``comp`` are ``[K, N]`` predicted labels of the dense and compressed models
of K seeds (row 0: the primary model, the one that is deployed and timed). This module
only composes the metrics of :mod:`harness.metrics`; their formulas live there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.metrics.amplification import apply_thresholds, biasamp_directional, calibrate_thresholds
from harness.metrics.bias import cev_sde, cie_report, disproportionate_impact, modal_cie, modal_labels, taxicab_scores
from harness.metrics.calibration import ece, ece_sweep, is_uncertain, softmax, uncertain_share
from harness.metrics.groups import GroupMetrics, group_masks
from harness.metrics.susceptibility import dense_scores, predictive_power
from harness.records import BiasStats

N_BOOT = 200
SEED = 0


def _recalls(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    support = np.bincount(y, minlength=n_classes)
    hits = np.bincount(y[pred == y], minlength=n_classes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(support > 0, hits / np.maximum(support, 1), np.nan)


def _interval(values: Sequence[float | None]) -> list[float] | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if len(finite) < 2:
        return None
    low, high = np.quantile(finite, [0.025, 0.975])
    return [float(low), float(high)]


def _significant(ci: list[float] | None) -> bool:
    return ci is not None and (ci[0] > 0 or ci[1] < 0)


@dataclass(frozen=True, eq=False)
class GroupData:
    """Group attributes of the evaluation split, and what amplification needs from the training split.

    ``codes``/``levels``: every attribute (intersections included) as level indices and names.
    ``binary``: the attributes entering bias amplification (two levels, not intersections); the
    indicator attribute is level 1 (CelebA: the attribute is present). ``train_y``/``train_codes``:
    training labels and those attributes' training codes, for the direction indicator y_at.
    """

    codes: dict[str, np.ndarray]
    levels: dict[str, list[str]]
    binary: list[str] = field(default_factory=list)
    train_y: np.ndarray | None = None
    train_codes: dict[str, np.ndarray] = field(default_factory=dict)


def binary_attributes(levels: dict[str, list[str]], intersections: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Attributes with exactly two levels, intersections excluded, in order."""
    return [a for a, names in levels.items() if len(names) == 2 and a not in intersections]


def _tasks(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Task matrix of a single-label classifier: one column per class (one-hot), binary targets included.

    With one-hot tasks every row has a positive task, so the spec's indicator rows (a positive task
    or attribute) are all rows. Scoring a binary target by its positive column alone would drop the
    rows with neither the target nor the attribute and bias the sign of y_at (Berkson's paradox);
    its negative column mirrors the positive one (Δ and y_at both change sign), so the mean over
    both columns equals the positive column's value with the indicator taken over all rows.
    """
    labels = np.asarray(labels).astype(np.int64)
    return (labels[:, None] == np.arange(n_classes)[None, :]).astype(np.int64)


def _row_means(values: np.ndarray) -> list[float | None]:
    out = []
    for row in values:
        ok = ~np.isnan(row)
        out.append(float(row[ok].mean()) if ok.any() else None)
    return out


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def amplification(y, pred_dense, pred_comp, n_classes: int, groups: GroupData | None) -> dict[str, Any]:
    """BiasAmp→ A→T of the compressed and dense predictions and its change, as BiasStats fields.

    Attributes A: level 1 of every binary attribute; tasks T: the one-hot class (see :func:`_tasks`);
    y_at from the training split when given (Wang & Russakovsky 2021, spec §6).
    """
    if groups is None or not groups.codes:
        return {"bias_amp_unavailable_reason": "the dataset has no group attributes"}
    if not groups.binary:
        shown = ", ".join(f"{a} ({len(groups.levels.get(a, []))} levels)" for a in groups.codes)
        return {"bias_amp_unavailable_reason": f"no binary group attribute to condition on: {shown}"}
    attrs = np.stack([(np.asarray(groups.codes[a]) == 1).astype(np.int64) for a in groups.binary], axis=1)
    tasks = _tasks(y, n_classes)
    train: dict[str, np.ndarray] = {}
    if groups.train_y is not None and len(groups.train_y) and all(a in groups.train_codes for a in groups.binary):
        train = {
            "task_y_train": _tasks(groups.train_y, n_classes),
            "attr_y_train": np.stack([(np.asarray(groups.train_codes[a]) == 1).astype(np.int64)
                                      for a in groups.binary], axis=1),
        }

    def amp(pred):
        return biasamp_directional(tasks, attrs, _tasks(pred, n_classes), "A->T",
                                   task_y_train=train.get("task_y_train"), attr_y_train=train.get("attr_y_train"))

    comp, dense = amp(pred_comp), amp(pred_dense)
    per_comp, per_dense = _row_means(comp.y_at * comp.delta), _row_means(dense.y_at * dense.delta)
    keys = [f"{a}={groups.levels[a][1]}" for a in groups.binary]
    out: dict[str, Any] = {
        "bias_amp_a_to_t": comp.value,
        "bias_amp_a_to_t_dense": dense.value,
        "bias_amp_a_to_t_delta": _diff(comp.value, dense.value),
        "bias_amp_delta_by_attribute": {k: _diff(c, d) for k, c, d in zip(keys, per_comp, per_dense, strict=True)},
        "bias_amp_indicator_split": "train" if train else "evaluation",
    }
    if comp.value is None:
        out["bias_amp_unavailable_reason"] = "every (attribute, task) pair has an empty conditioning set"
    out["_amp"] = amp  # for the calibrated predictions; removed before BiasStats is built
    return out


def _worst_group(y, pred, groups: GroupData, n_classes: int) -> tuple[float | None, str | None]:
    gm = GroupMetrics(y_true=y, y_pred=pred, groups=groups.codes, level_names=groups.levels, n_classes=n_classes)
    scored = [(acc, f"{a}={lv}") for a in gm.levels for lv, acc in gm.by_group[a]["accuracy"].items()
              if acc is not None]
    return min(scored) if scored else (None, None)


def threshold_calibration(y, comp_logits, calib_logits, calib_y, groups: GroupData | None, n_classes: int,
                          amp=None, dense_amp: float | None = None) -> dict[str, Any]:
    """Iofinova et al.'s countermeasure on a binary softmax classifier, as BiasStats fields.

    Score s = z1 − z0 (the log-odds; argmax is s > 0). t = the k-th largest calibration-split
    score, k = the calibration split's positive count; predict s > t. Accuracy, worst group,
    predicted-positive share and bias amplification are recomputed with these predictions.
    """
    if n_classes != 2:
        return {"threshold_calibration_unavailable_reason":
                f"threshold calibration needs a binary target; this dataset has {n_classes} classes"}
    if calib_logits is None or calib_y is None:
        return {"threshold_calibration_unavailable_reason":
                "calibration-split logits of this artifact were not scored in this process (resumed or fleet run)"}
    calib_logits, calib_y = np.asarray(calib_logits, float), np.asarray(calib_y)
    if not calib_y.any():
        return {"threshold_calibration_unavailable_reason": "the calibration split has no positive sample"}
    t = float(calibrate_thresholds(calib_logits[:, 1] - calib_logits[:, 0], calib_y)[0])
    comp_logits = np.asarray(comp_logits, float)
    pred = apply_thresholds((comp_logits[:, 1] - comp_logits[:, 0])[:, None], [t])[:, 0]
    out: dict[str, Any] = {
        "calibrated_threshold": t,
        "calibrated_top1": float(np.mean(pred == y)),
        "positive_share_true": float(np.mean(y == 1)),
        "positive_share_predicted": float(np.mean(comp_logits.argmax(1) == 1)),
        "positive_share_calibrated": float(np.mean(pred == 1)),
    }
    if groups is not None and groups.codes:
        out["calibrated_worst_group_accuracy"], out["calibrated_worst_group"] = _worst_group(y, pred, groups, 2)
    if amp is not None:
        value = amp(pred).value
        out["calibrated_bias_amp_a_to_t"] = value
        out["calibrated_bias_amp_a_to_t_delta"] = _diff(value, dense_amp)
    return out


def _group_deltas_boot(y, idx, correct_comp, correct_dense, codes: dict[str, np.ndarray],
                       levels: dict[str, list[str]]) -> dict[str, float]:
    """Accuracy delta per "attr=level" on one resample (NaN where the level is absent)."""
    out = {}
    for attr, c in codes.items():
        cb = c[idx]
        n_levels = len(levels[attr])
        n = np.bincount(cb, minlength=n_levels).astype(float)
        hits = np.bincount(cb, weights=correct_comp[idx] * 1.0 - correct_dense[idx], minlength=n_levels)
        d = np.divide(hits, n, out=np.full(n_levels, np.nan), where=n > 0)
        for i, name in enumerate(levels[attr]):
            out[f"{attr}={name}"] = float(d[i])
    return out


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
    cev_variant: str = "reference",
    groups: GroupData | None = None,
    calib_logits: np.ndarray | None = None,
    calib_y: np.ndarray | None = None,
) -> BiasStats:
    """``dense_logits`` ([K, N, C]) adds Iofinova et al.'s check: does the dense population's
    uncertainty (1 - mean top-1 probability) predict CIE membership (AUROC; precision and recall
    of the uncertain set, population-mean top-1 probability < 0.9)?

    ``groups``: per-group accuracy-delta intervals, the CIE report by group, per-group FPR/FNR
    changes (binary target) and bias amplification. ``calib_logits``/``calib_y``: the compressed
    primary's logits on the calibration split, for threshold calibration (binary target)."""
    y = np.asarray(y)
    dense, comp = np.atleast_2d(dense), np.atleast_2d(comp)
    n_classes, n = len(class_names), len(y)
    cs = cev_sde(y, dense[0], comp, n_classes, variant=cev_variant)  # type: ignore[arg-type]
    cie = modal_cie(dense, comp)
    codes = {a: np.asarray(c).astype(np.int64) for a, c in (groups.codes if groups else {}).items()}
    levels = {a: list((groups.levels if groups else {}).get(a) or map(str, range(int(c.max(initial=0)) + 1)))
              for a, c in codes.items()}
    masks = group_masks(codes, levels) if codes else {}
    report = cie_report(cie, y, dense, comp, masks, n_classes=n_classes)
    probs = softmax(comp_logits)
    susceptibility = None
    if dense_logits is not None and 0 < report.n_cie < n:
        dense_probs = softmax(dense_logits)
        susceptibility = predictive_power(dense_scores(dense_probs).uncertainty, cie,
                                          flagged=is_uncertain(dense_probs.reshape(-1, n, n_classes).mean(0)))
    impact = disproportionate_impact(
        dict(zip(class_names, _recalls(y, dense[0], n_classes).tolist(), strict=True)),
        dict(zip(class_names, _recalls(y, comp[0], n_classes).tolist(), strict=True)),
        float(np.mean(dense[0] == y)),
        float(np.mean(comp[0] == y)),
    )

    # one bootstrap loop for every interval: samples resampled jointly
    rng = np.random.default_rng(seed)
    deltas, cevs, cie_fracs, group_deltas = [], [], [], []
    correct_comp, correct_dense = comp[0] == y, dense[0] == y
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        yb = y[idx]
        deltas.append(_recalls(yb, comp[0, idx], n_classes) - _recalls(yb, dense[0, idx], n_classes))
        cevs.append(cev_sde(yb, dense[0, idx], comp[:, idx], n_classes, variant=cev_variant).cev)  # type: ignore[arg-type]
        cie_fracs.append(float(cie[idx].mean()))
        if codes:
            group_deltas.append(_group_deltas_boot(y, idx, correct_comp, correct_dense, codes, levels))
    deltas_arr = np.asarray(deltas)
    delta_ci = {name: _interval(deltas_arr[:, c].tolist()) for c, name in enumerate(class_names)}
    group_ci = {key: _interval([g[key] for g in group_deltas]) for key in masks}
    amp = amplification(y, dense[0], comp[0], n_classes, groups)
    amp_fn = amp.pop("_amp", None)
    calibrated = threshold_calibration(y, comp_logits, calib_logits, calib_y, groups, n_classes,
                                       amp_fn, amp.get("bias_amp_a_to_t_dense"))
    unc = uncertain_share(probs, y=y)
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
        uncertain_share=unc.overall,
        n_classes_hurt=impact.n_classes_hurt,
        susceptibility_auroc=susceptibility.auroc if susceptibility else None,
        per_class_delta_ci=delta_ci,
        per_class_delta_significant={k: _significant(ci) for k, ci in delta_ci.items()},
        n_boot=n_boot,
        cev_variant=cev_variant,
        per_group_delta_ci=group_ci,
        per_group_delta_significant={k: _significant(ci) for k, ci in group_ci.items()},
        cie_accuracy_dense=report.base.accuracy_cie,
        cie_accuracy_rest_dense=report.base.accuracy_rest,
        cie_accuracy_compressed=report.comp.accuracy_cie,
        cie_accuracy_rest_compressed=report.comp.accuracy_rest,
        n_cie_compressed_correct=report.n_comp_modal_correct,
        cie_group_rel_rep={k: r.rel_rep for k, r in report.by_group.items()},
        per_group_fpr_delta={k: r.fpr_delta for k, r in report.group_error_rates.items()},
        per_group_fnr_delta={k: r.fnr_delta for k, r in report.group_error_rates.items()},
        susceptibility_precision=susceptibility.precision if susceptibility else None,
        susceptibility_recall=susceptibility.recall if susceptibility else None,
        uncertain_share_by_class={class_names[c]: v for c, v in sorted(unc.per_class.items())},
        **amp,
        **calibrated,
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
