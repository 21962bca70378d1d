"""Per-class accuracy of one set of predictions, and its deltas against the dense baseline.

Recall of class c = correct predictions of c / examples of c (``support``). A class with
no evaluation examples has recall ``None`` (reported as unsupported, never 0/0) and is
left out of the worst-class minimum.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from harness.errors import InputError
from harness.records import AccuracyStats


def accuracy_stats(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: list[str],
    groups: dict[str, np.ndarray] | None = None,
    group_levels: dict[str, list[str]] | None = None,
    min_group_support: int | None = None,
) -> AccuracyStats:
    """Top-1 and per-class recall; with ``groups`` (attribute -> level index per sample) also the
    accuracy of every group level and the worst one (a level with no sample is None and left out).

    ``min_group_support``: levels with fewer samples are listed in ``small_support_groups``; they
    stay in every table and in the worst-group minimum (flagged, not hidden)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise InputError(f"labels {y_true.shape} and predictions {y_pred.shape} must be equal-length vectors")
    if len(y_true) == 0:
        raise InputError("the evaluation split is empty")
    n_classes = len(class_names)
    if y_true.min() < 0 or y_true.max() >= n_classes:
        raise InputError(f"labels outside 0..{n_classes - 1} in the evaluation split")
    recall: dict[str, float | None] = {}
    support: dict[str, int] = {}
    for c, name in enumerate(class_names):
        mask = y_true == c
        support[name] = int(mask.sum())
        recall[name] = float(np.mean(y_pred[mask] == c)) if support[name] else None
    supported = {k: v for k, v in recall.items() if v is not None}
    worst = min(supported, key=lambda k: (supported[k], class_names.index(k)))
    per_group, group_support, worst_group, worst_group_acc, small = {}, {}, None, None, []
    if groups:
        from harness.metrics.groups import GroupMetrics

        gm = GroupMetrics(y_true=y_true, y_pred=y_pred, groups=groups, level_names=group_levels, n_classes=n_classes)
        per_group = {attr: dict(gm.by_group[attr]["accuracy"]) for attr in gm.levels}
        group_support = {attr: dict(gm.support[attr]) for attr in gm.levels}
        scored = [(acc, f"{attr}={level}") for attr, accs in per_group.items() for level, acc in accs.items() if acc is not None]
        if scored:
            worst_group_acc, worst_group = min(scored)
        if min_group_support is not None:
            small = [f"{attr}={level}" for attr, sup in group_support.items() for level, n in sup.items()
                     if n < min_group_support]
    return AccuracyStats(
        n_samples=int(len(y_true)),
        top1=float(np.mean(y_true == y_pred)),
        per_class_recall=recall,
        per_class_support=support,
        worst_class_recall=supported[worst],
        worst_class=worst,
        per_group_accuracy=per_group,
        per_group_support=group_support,
        worst_group_accuracy=worst_group_acc,
        worst_group=worst_group,
        small_support_groups=small,
        min_group_support=min_group_support if groups else None,
    )


def against_baseline(stats: AccuracyStats, baseline: AccuracyStats) -> AccuracyStats:
    """Copy of ``stats`` with per-class recall and per-group accuracy deltas, top-1 delta and
    worst-class drop vs ``baseline``."""
    delta = {
        name: (r - base)
        if r is not None and (base := baseline.per_class_recall.get(name)) is not None
        else None
        for name, r in stats.per_class_recall.items()
    }
    group_delta = {
        attr: {
            level: acc - base_acc
            if acc is not None and (base_acc := baseline.per_group_accuracy.get(attr, {}).get(level)) is not None
            else None
            for level, acc in levels.items()
        }
        for attr, levels in stats.per_group_accuracy.items()
    }
    return dataclasses.replace(
        stats,
        per_class_delta=delta,
        per_group_delta=group_delta,
        top1_delta=stats.top1 - baseline.top1,
        worst_class_drop=baseline.worst_class_recall - stats.worst_class_recall,
    )
