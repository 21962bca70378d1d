"""Disaggregated metrics (GroupMetrics) against scikit-learn, fairlearn's MetricFrame and hand cases."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import InputError
from harness.metrics import (
    GroupMetrics,
    add_intersection,
    confusion_matrix,
    disaggregate_by_class,
    group_masks,
    top_k_accuracy,
)


@pytest.fixture(scope="module")
def binary():
    """Binary labels and predictions with two group attributes (3 and 2 levels), skewed by group."""
    rng = np.random.default_rng(0)
    n = 2000
    sex, age = rng.integers(0, 3, n), rng.integers(0, 2, n)
    y = (rng.random(n) < 0.3 + 0.15 * sex).astype(int)
    p = np.where(rng.random(n) < 0.75 - 0.1 * age, y, 1 - y)
    return y, p, {"sex": sex, "age": age}, {"sex": ["f", "m", "x"], "age": ["young", "old"]}


def _sk(y, p):
    from sklearn.metrics import accuracy_score, precision_score, recall_score
    from sklearn.metrics import confusion_matrix as skcm

    tn, fp, fn, tp = skcm(y, p, labels=[0, 1]).ravel()
    return {"accuracy": accuracy_score(y, p), "recall": recall_score(y, p), "precision": precision_score(y, p),
            "fpr": fp / (fp + tn), "fnr": fn / (fn + tp), "selection_rate": np.mean(p == 1)}


def test_binary_group_metrics_agree_with_scikit_learn_inside_every_level(binary):
    y, p, groups, names = binary
    gm = GroupMetrics(y_true=y, y_pred=p, groups=groups, level_names=names, n_classes=2)
    for attr, codes in groups.items():
        for i, level in enumerate(names[attr]):
            mask = codes == i
            expected = _sk(y[mask], p[mask])
            assert gm.support[attr][level] == mask.sum()
            for metric, value in expected.items():
                assert gm.by_group[attr][metric][level] == pytest.approx(value), (attr, level, metric)
    assert gm.overall == pytest.approx(_sk(y, p))


def test_per_class_metrics_agree_with_scikit_learn_one_vs_rest():
    from sklearn.metrics import accuracy_score, multilabel_confusion_matrix, precision_score, recall_score
    from sklearn.metrics import confusion_matrix as skcm

    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 700)
    p = np.where(rng.random(700) < 0.6, y, rng.integers(0, 5, 700))
    gm = disaggregate_by_class(y, p, 5, class_names=list("abcde"))
    mcm = multilabel_confusion_matrix(y, p, labels=range(5))  # [[tn, fp], [fn, tp]] per class
    fpr, fnr = mcm[:, 0, 1] / mcm[:, 0].sum(1), mcm[:, 1, 0] / mcm[:, 1].sum(1)
    for metric, expected in {"recall": recall_score(y, p, average=None), "accuracy": recall_score(y, p, average=None),
                             "precision": precision_score(y, p, average=None), "fpr": fpr, "fnr": fnr}.items():
        assert list(gm.by_group["class"][metric].values()) == pytest.approx(list(expected)), metric
    assert list(gm.support["class"].values()) == np.bincount(y, minlength=5).tolist()
    top1 = accuracy_score(y, p)
    assert gm.overall["accuracy"] == gm.overall["recall"] == gm.overall["precision"] == pytest.approx(top1)
    assert (confusion_matrix(y, p, 5) == skcm(y, p, labels=range(5))).all()


def test_aggregates_agree_with_fairlearn_metricframe(binary):
    fl = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    y, p, groups, names = binary
    gm = GroupMetrics(y_true=y, y_pred=p, groups=groups, level_names=names, n_classes=2)
    metrics = {"accuracy": accuracy_score, "recall": recall_score, "precision": precision_score,
               "fpr": fl.false_positive_rate, "fnr": fl.false_negative_rate, "selection_rate": fl.selection_rate}
    mf = fl.MetricFrame(metrics=metrics, y_true=y, y_pred=p, sensitive_features=groups["sex"])
    for m in metrics:
        assert gm.overall[m] == pytest.approx(mf.overall[m])
        assert [gm.by_group["sex"][m][lvl] for lvl in names["sex"]] == pytest.approx(mf.by_group[m].tolist())
        assert gm.group_min(m, "sex") == pytest.approx(mf.group_min()[m])
        assert gm.group_max(m, "sex") == pytest.approx(mf.group_max()[m])
        for method in ("between_groups", "to_overall"):
            assert gm.difference(m, "sex", method=method) == pytest.approx(mf.difference(method=method)[m])
            assert gm.ratio(m, "sex", method=method) == pytest.approx(mf.ratio(method=method)[m])


def test_per_class_accuracy_equals_fairlearn_metricframe_grouped_by_the_true_label():
    fl = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 500)
    p = np.where(rng.random(500) < 0.7, y, rng.integers(0, 4, 500))
    mf = fl.MetricFrame(metrics=accuracy_score, y_true=y, y_pred=p, sensitive_features=y)
    gm = disaggregate_by_class(y, p, 4)
    assert list(gm.by_group["class"]["accuracy"].values()) == pytest.approx(mf.by_group.tolist())
    assert gm.difference("accuracy", method="to_overall") == pytest.approx(mf.difference(method="to_overall"))


def test_intersection_of_two_attributes_matches_fairlearn_on_both_features(binary):
    y, p, groups, names = binary
    groups2, names2 = add_intersection(groups, names, "sex", "age")
    assert names2["sex&age"] == ["f&young", "f&old", "m&young", "m&old", "x&young", "x&old"]
    assert "sex&age" not in groups and set(groups2) == {"sex", "age", "sex&age"}  # inputs untouched
    gm = GroupMetrics(y_true=y, y_pred=p, groups=groups2, level_names=names2, n_classes=2)
    mask = (groups["sex"] == 1) & (groups["age"] == 1)
    assert gm.support["sex&age"]["m&old"] == mask.sum()
    assert gm.by_group["sex&age"]["recall"]["m&old"] == pytest.approx(_sk(y[mask], p[mask])["recall"])
    fl = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import recall_score

    mf = fl.MetricFrame(metrics=recall_score, y_true=y, y_pred=p,
                        sensitive_features={"sex": groups["sex"], "age": groups["age"]})
    assert gm.by_group["sex&age"]["recall"]["m&old"] == pytest.approx(mf.by_group.loc[(1, 1)])
    assert gm.difference("recall", "sex&age") == pytest.approx(mf.difference())


def test_level_with_zero_support_is_none_not_zero_and_is_skipped_by_aggregates():
    y, p = np.array([0, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 1])
    g = {"site": np.array([0, 0, 0, 2, 2])}  # level "b" (index 1) is empty
    gm = GroupMetrics(y_true=y, y_pred=p, groups=g, level_names={"site": ["a", "b", "c"]}, n_classes=2)
    assert gm.support["site"]["b"] == 0
    assert all(gm.by_group["site"][m]["b"] is None for m in gm.metrics)
    assert gm.by_group["site"]["recall"]["c"] == 1.0 and gm.by_group["site"]["fpr"]["a"] == 0.0
    assert gm.by_group["site"]["precision"]["c"] == 1.0 and gm.by_group["site"]["fnr"]["c"] == 0.0
    assert gm.group_min("accuracy") == pytest.approx(2 / 3) and gm.group_max("accuracy") == 1.0
    cls = disaggregate_by_class(np.array([0, 0, 1]), np.array([0, 1, 1]), 3)
    assert cls.support["class"]["2"] == 0 and cls.by_group["class"]["recall"]["2"] is None
    assert cls.by_group["class"]["fpr"]["2"] == 0.0  # never predicted: FPR 0, defined


def test_intersection_keeps_empty_combinations_as_unsupported_levels():
    y = p = np.array([0, 1, 1, 0])
    groups, names = add_intersection({"a": np.array([0, 0, 1, 1]), "b": np.array([0, 0, 0, 0])}, None, "a", "b")
    assert names["a&b"] == ["0&0", "1&0"]  # b has a single observed level without names
    groups, names = add_intersection({"a": groups["a"], "b": groups["b"]}, {"b": ["u", "v"]}, "a", "b")
    gm = GroupMetrics(y_true=y, y_pred=p, groups=groups, level_names=names, n_classes=2)
    assert gm.support["a&b"] == {"0&u": 2, "0&v": 0, "1&u": 2, "1&v": 0}
    assert gm.by_group["a&b"]["accuracy"]["1&v"] is None


def test_multiclass_groups_report_accuracy_and_aggregates_return_floats_or_none():
    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    g = {"a": rng.integers(0, 2, 300), "b": rng.integers(0, 3, 300)}
    gm = GroupMetrics(y_true=y, y_pred=p, groups=g, n_classes=4)
    assert gm.metrics == ("accuracy",) and gm.levels == {"a": ["0", "1"], "b": ["0", "1", "2"]}
    assert gm.overall["accuracy"] == pytest.approx(np.mean(y == p))
    assert isinstance(gm.ratio("accuracy", "b"), float)
    with pytest.raises(InputError):
        gm.group_min("accuracy")  # two attributes: the attribute must be named
    with pytest.raises(InputError):
        gm.group_min("recall", "a")  # not defined for a multi-class task
    with pytest.raises(InputError):
        GroupMetrics(y_true=y, y_pred=p, groups={"a": g["a"][:10]}, n_classes=4)
    with pytest.raises(InputError):
        GroupMetrics(y_true=y, y_pred=p, groups=g, n_classes=3)  # labels outside 0..2


def test_group_metrics_are_immutable():
    gm = disaggregate_by_class(np.array([0, 1]), np.array([0, 1]), 2)
    with pytest.raises(AttributeError):
        gm.overall = {}


def test_group_masks_name_every_level_of_every_attribute(binary):
    _, _, groups, names = binary
    masks = group_masks(groups, names)
    assert list(masks) == ["sex=f", "sex=m", "sex=x", "age=young", "age=old"]
    assert (masks["sex=m"] == (groups["sex"] == 1)).all()


def test_top_k_accuracy_agrees_with_scikit_learn_and_top1_is_argmax_accuracy():
    from sklearn.metrics import top_k_accuracy_score

    rng = np.random.default_rng(4)
    logits, y = rng.normal(size=(400, 10)), rng.integers(0, 10, 400)
    for k in (1, 5):
        assert top_k_accuracy(logits, y, k) == pytest.approx(top_k_accuracy_score(y, logits, k=k, labels=range(10)))
    assert top_k_accuracy(logits, y, 1) == pytest.approx(np.mean(logits.argmax(1) == y))
    assert top_k_accuracy(np.zeros((2, 3)), np.array([0, 1]), 1) == 0.5  # ties go to the lower class
    assert top_k_accuracy(logits[:, :4], np.minimum(y, 3), 5) == 1.0
