"""Disaggregated metrics with one shape for classes and groups (fairlearn ``MetricFrame``-like).

A *level* is one value of one attribute (``sex=female``, ``class=3``). For every level the
frame holds ``support`` and the metrics below, plus the same metrics ``overall``; aggregates
(``group_min``, ``group_max``, ``difference``, ``ratio``) follow fairlearn's definitions.

- Group attributes: ``accuracy`` = mean(ŷ = y) inside the level. For a binary task
  (``n_classes == 2``, positive class 1) also ``recall`` (TPR) = TP/(TP+FN),
  ``precision`` = TP/(TP+FP), ``fpr`` = FP/(FP+TN), ``fnr`` = FN/(FN+TP),
  ``selection_rate`` = (TP+FP)/n, all counted inside the level.
- Classes (:func:`disaggregate_by_class`): level c is the one-vs-rest problem "c vs rest" over
  all samples, from the confusion matrix M (rows true, cols predicted): TP = M[c,c],
  FP = colsum − TP, FN = rowsum − TP, TN = N − TP − FP − FN. ``accuracy`` of level c is the
  accuracy inside the level (= recall_c); ``overall`` pools the one-vs-rest counts (micro
  average), so overall accuracy = recall = precision = top-1.

A value whose denominator is zero (a level with no support, a group with no positives) is
``None``, never 0/0. Every query returns ``float | None``: one return type.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.errors import InputError

BINARY_METRICS = ("accuracy", "recall", "precision", "fpr", "fnr", "selection_rate")


def _div(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def _labels(y_true, y_pred, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise InputError(f"labels {y_true.shape} and predictions {y_pred.shape} must be equal-length vectors")
    for name, a in (("labels", y_true), ("predictions", y_pred)):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise InputError(f"{name} outside 0..{n_classes - 1}")
    return y_true.astype(np.int64), y_pred.astype(np.int64)


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """M[t, p] = #{i : y_i = t, ŷ_i = p}, shape [C, C] (rows true, columns predicted)."""
    y_true, y_pred = _labels(y_true, y_pred, n_classes)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def one_vs_rest_counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(TP, FP, FN, TN) per class from a confusion matrix, each shape [C]."""
    tp = np.diag(cm).astype(np.int64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    return tp, fp, fn, cm.sum() - tp - fp - fn


def top_k_accuracy(logits, y, k: int) -> float:
    """Share of samples whose true label is among the k highest scores (ties: lower class first,
    as ``argmax`` does, so top-1 equals argmax accuracy). k ≥ C gives 1."""
    logits, y = np.asarray(logits), np.asarray(y)
    if logits.ndim != 2 or y.shape != (logits.shape[0],) or not len(y):
        raise InputError(f"logits {logits.shape} must be [N, C] with N = len(labels) {y.shape} > 0")
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == y[:, None]).any(axis=1)))


def _rates(tp: int, fp: int, fn: int, tn: int) -> dict[str, float | None]:
    n = tp + fp + fn + tn
    return {
        "accuracy": _div(tp + tn, n), "recall": _div(tp, tp + fn), "precision": _div(tp, tp + fp),
        "fpr": _div(fp, fp + tn), "fnr": _div(fn, fn + tp), "selection_rate": _div(tp + fp, n),
    }


def _levels(codes: np.ndarray, names: list[str] | None, attr: str) -> list[str]:
    if codes.size and (codes.min() < 0 or (names is not None and codes.max() >= len(names))):
        raise InputError(f"attribute {attr!r} has level indices outside 0..{len(names or []) - 1}")
    if names is not None:
        return [str(n) for n in names]
    return [str(i) for i in range(int(codes.max()) + 1 if codes.size else 0)]


@dataclass(frozen=True, init=False, eq=False)
class GroupMetrics:
    """Per-level metrics for each attribute, computed once in the constructor.

    ``by_group[attribute][metric][level]``, ``support[attribute][level]``, ``overall[metric]``.
    """

    metrics: tuple[str, ...]
    levels: dict[str, list[str]]
    support: dict[str, dict[str, int]]
    by_group: dict[str, dict[str, dict[str, float | None]]]
    overall: dict[str, float | None]

    def __init__(self, *, y_true, y_pred, groups: dict[str, np.ndarray],
                 level_names: dict[str, list[str]] | None = None, n_classes: int) -> None:
        y_true, y_pred = _labels(y_true, y_pred, n_classes)
        binary = n_classes == 2
        metrics = BINARY_METRICS if binary else ("accuracy",)

        def at(mask: np.ndarray) -> dict[str, float | None]:
            yt, yp = y_true[mask], y_pred[mask]
            if not binary:
                return {"accuracy": _div(np.sum(yt == yp), len(yt))}
            tp, fp = int(np.sum((yt == 1) & (yp == 1))), int(np.sum((yt == 0) & (yp == 1)))
            fn, tn = int(np.sum((yt == 1) & (yp == 0))), int(np.sum((yt == 0) & (yp == 0)))
            return _rates(tp, fp, fn, tn)

        levels, support, by_group = {}, {}, {}
        for attr, codes in groups.items():
            codes = np.asarray(codes)
            if codes.shape != y_true.shape:
                raise InputError(f"attribute {attr!r} has shape {codes.shape}, labels have {y_true.shape}")
            names = _levels(codes, (level_names or {}).get(attr), attr)
            values = {name: at(codes == i) for i, name in enumerate(names)}
            levels[attr] = names
            support[attr] = {name: int(np.sum(codes == i)) for i, name in enumerate(names)}
            by_group[attr] = {m: {name: values[name][m] for name in names} for m in metrics}
        self._set(metrics, levels, support, by_group, at(np.ones(len(y_true), bool)))

    def _set(self, metrics, levels, support, by_group, overall) -> None:
        for name, value in zip(("metrics", "levels", "support", "by_group", "overall"),
                               (tuple(metrics), levels, support, by_group, overall), strict=True):
            object.__setattr__(self, name, value)

    def _values(self, metric: str, attribute: str | None) -> tuple[list[float], float | None]:
        if attribute is None:
            if len(self.by_group) != 1:
                raise InputError(f"name the attribute: one of {sorted(self.by_group)}")
            attribute = next(iter(self.by_group))
        if attribute not in self.by_group or metric not in self.metrics:
            raise InputError(f"unknown attribute {attribute!r} or metric {metric!r} (metrics: {self.metrics})")
        vals = [v for v in self.by_group[attribute][metric].values() if v is not None]
        return vals, self.overall[metric]

    def group_min(self, metric: str, attribute: str | None = None) -> float | None:
        """Smallest defined level value (levels with ``None`` are skipped)."""
        vals, _ = self._values(metric, attribute)
        return min(vals) if vals else None

    def group_max(self, metric: str, attribute: str | None = None) -> float | None:
        vals, _ = self._values(metric, attribute)
        return max(vals) if vals else None

    def difference(self, metric: str, attribute: str | None = None, *,
                   method: Literal["between_groups", "to_overall"] = "between_groups") -> float | None:
        """between_groups: max − min; to_overall: max over levels of |value − overall|."""
        vals, overall = self._values(metric, attribute)
        if not vals:
            return None
        if method == "between_groups":
            return max(vals) - min(vals)
        if method == "to_overall":
            return None if overall is None else max(abs(v - overall) for v in vals)
        raise InputError(f"unknown method {method!r}")

    def ratio(self, metric: str, attribute: str | None = None, *,
              method: Literal["between_groups", "to_overall"] = "between_groups") -> float | None:
        """between_groups: min / max; to_overall: min over levels of min(v/overall, overall/v).
        ``None`` when a denominator is 0."""
        vals, overall = self._values(metric, attribute)
        if not vals:
            return None
        if method == "between_groups":
            return _div(min(vals), max(vals))
        if method != "to_overall":
            raise InputError(f"unknown method {method!r}")
        if not overall:
            return None
        ratios = [v / overall for v in vals]
        if any(r == 0 for r in ratios):
            return 0.0
        return min(min(r, 1 / r) for r in ratios)


def disaggregate_by_class(y_true, y_pred, n_classes: int, class_names: list[str] | None = None) -> GroupMetrics:
    """Classes as levels of the attribute ``"class"``: one-vs-rest rates per class (see module doc)."""
    names = [str(c) for c in (class_names or range(n_classes))]
    if len(names) != n_classes:
        raise InputError(f"{len(names)} class names for {n_classes} classes")
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp, fp, fn, tn = one_vs_rest_counts(cm)
    per = {}
    for c, name in enumerate(names):
        per[name] = _rates(int(tp[c]), int(fp[c]), int(fn[c]), int(tn[c]))
        per[name]["accuracy"] = per[name]["recall"]  # accuracy inside the level y = c
    overall = _rates(int(tp.sum()), int(fp.sum()), int(fn.sum()), int(tn.sum()))
    overall["accuracy"] = _div(tp.sum(), cm.sum())
    frame = object.__new__(GroupMetrics)
    frame._set(BINARY_METRICS, {"class": names}, {"class": {n: int(cm[c].sum()) for c, n in enumerate(names)}},
               {"class": {m: {n: per[n][m] for n in names} for m in BINARY_METRICS}}, overall)
    return frame


def add_intersection(groups: dict[str, np.ndarray], level_names: dict[str, list[str]] | None,
                     a: str, b: str) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """New (groups, level_names) with attribute ``"a&b"``: level ``"x&y"`` has index i_a·n_b + i_b.

    Every combination is a level, including empty ones (reported with support 0 and ``None``).
    """
    level_names = dict(level_names or {})
    for attr in (a, b):
        if attr not in groups:
            raise InputError(f"unknown attribute {attr!r}")
        level_names[attr] = _levels(np.asarray(groups[attr]), level_names.get(attr), attr)
    nb = len(level_names[b])
    name = f"{a}&{b}"
    codes = np.asarray(groups[a]).astype(np.int64) * nb + np.asarray(groups[b]).astype(np.int64)
    level_names[name] = [f"{x}&{y}" for x, y in itertools.product(level_names[a], level_names[b])]
    return {**groups, name: codes}, level_names


def group_masks(groups: dict[str, np.ndarray],
                level_names: dict[str, list[str]] | None = None) -> dict[str, np.ndarray]:
    """``{"attr=level": bool[N]}`` for every level: the form :func:`cie_report` takes."""
    out = {}
    for attr, codes in groups.items():
        codes = np.asarray(codes)
        for i, name in enumerate(_levels(codes, (level_names or {}).get(attr), attr)):
            out[f"{attr}={name}"] = codes == i
    return out


def with_intersections(groups: dict[str, np.ndarray], level_names: dict[str, list[str]] | None,
                       pairs: list[list[str]] | list[tuple[str, str]]) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """``groups`` plus one attribute ``"a&b"`` per pair (see :func:`add_intersection`), in order."""
    out_groups, out_levels = dict(groups), dict(level_names or {})
    for a, b in pairs:
        out_groups, out_levels = add_intersection(out_groups, out_levels, a, b)
    return out_groups, out_levels
