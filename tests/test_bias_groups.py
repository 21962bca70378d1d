"""Group-level bias of a point: amplification, threshold calibration, intersections, per-group intervals."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics import accuracy_stats, against_baseline, biasamp_directional, cev_sde
from harness.metrics.point_bias import GroupData, amplification, bias_stats, binary_attributes, threshold_calibration
from harness.records import point_from_dict, to_dict

# 8 samples, one binary attribute (level 1 = "A"), a binary target
ATTR = np.array([1, 1, 1, 1, 0, 0, 0, 0])
Y = np.array([1, 1, 1, 0, 1, 0, 0, 0])
LEVELS = {"a": ["not A", "A"]}


def _groups(codes=None, levels=None, **kw) -> GroupData:
    codes = {"a": ATTR} if codes is None else codes
    levels = LEVELS if levels is None else levels
    return GroupData(codes, levels, binary_attributes(levels), **kw)


def _logits(pred: np.ndarray, n_classes: int = 2, margin: float = 3.0) -> np.ndarray:
    z = np.zeros((len(pred), n_classes))
    z[np.arange(len(pred)), pred] = margin
    return z


# ---------------------------------------------------------------- bias amplification

def test_amplification_hand_computed_compressed_model_predicting_the_attribute():
    # y_at on all rows: task "1" co-occurs with A (8·3 − 4·4 > 0), task "0" against it.
    # The compressed model predicts exactly A: P(ŷ=1|A) − P(y=1|A) = 1 − 3/4 = +0.25 for task 1,
    # −0.25 for task 0, both times the sign of y_at: BiasAmp = +0.25. The dense model is perfect: 0.
    out = amplification(Y, Y, ATTR, 2, _groups())
    assert out["bias_amp_a_to_t"] == pytest.approx(0.25)
    assert out["bias_amp_a_to_t_dense"] == pytest.approx(0.0)
    assert out["bias_amp_a_to_t_delta"] == pytest.approx(0.25)
    assert out["bias_amp_delta_by_attribute"] == {"a=A": pytest.approx(0.25)}
    assert out["bias_amp_indicator_split"] == "evaluation"


def test_one_hot_tasks_of_a_binary_target_equal_the_positive_column_with_the_indicator_over_all_rows():
    rng = np.random.default_rng(3)
    y, a, pred = rng.integers(0, 2, 300), rng.integers(0, 2, (300, 2)), rng.integers(0, 2, 300)
    levels = {"u": ["0", "1"], "v": ["0", "1"]}
    out = amplification(y, y, pred, 2, _groups({"u": a[:, 0], "v": a[:, 1]}, levels))
    reference = biasamp_directional(y, a, pred, "A->T", indicator_rows="all")
    assert out["bias_amp_a_to_t"] == pytest.approx(reference.value)


def test_amplification_direction_comes_from_the_training_split_when_given():
    # training data where task 1 goes with "not A": y_at flips, so the same predictions de-amplify
    train_y, train_a = np.array([1, 1, 0, 0]), np.array([0, 0, 1, 1])
    out = amplification(Y, Y, ATTR, 2, _groups(train_y=train_y, train_codes={"a": train_a}))
    assert out["bias_amp_a_to_t"] == pytest.approx(-0.25)
    assert out["bias_amp_indicator_split"] == "train"


def test_amplification_is_zero_for_identical_models_and_none_with_a_reason_without_binary_attributes():
    same = amplification(Y, ATTR, ATTR, 2, _groups())
    assert same["bias_amp_a_to_t_delta"] == 0.0
    three = amplification(Y, Y, ATTR, 2, _groups({"g": np.arange(8) % 3}, {"g": ["x", "y", "z"]}))
    assert three.get("bias_amp_a_to_t") is None
    assert "no binary group attribute" in three["bias_amp_unavailable_reason"] and "g (3 levels)" in three["bias_amp_unavailable_reason"]
    assert amplification(Y, Y, ATTR, 2, None)["bias_amp_unavailable_reason"] == "the dataset has no group attributes"


def test_intersections_are_not_amplification_attributes():
    assert binary_attributes({"a": ["0", "1"], "b": ["0", "1", "2"], "a&c": ["x", "y"]}, ["a&c"]) == ["a"]


# ---------------------------------------------------------------- threshold calibration

def test_threshold_calibration_hand_computed():
    # calibration margins z1 − z0 = 4, 3, 2, 1, 0, -1 with 3 positives: t = 3rd largest = 2, predict s > 2
    calib_y = np.array([1, 1, 1, 0, 0, 0])
    margins = np.array([4.0, 3.0, 2.0, 1.0, 0.0, -1.0])
    calib = np.stack([np.zeros(6), margins], axis=1)
    ev = np.stack([np.zeros(8), np.array([5, 2.5, 1.5, 0.5, 3, -1, -2, -3])], axis=1)  # argmax: first 5 positive
    out = threshold_calibration(Y, ev, calib, calib_y, _groups(), 2)
    assert out["calibrated_threshold"] == 2.0
    calibrated = np.array([1, 1, 0, 0, 1, 0, 0, 0])  # margins above 2
    assert out["calibrated_top1"] == pytest.approx(np.mean(calibrated == Y))
    assert out["positive_share_predicted"] == pytest.approx(5 / 8)
    assert out["positive_share_calibrated"] == pytest.approx(3 / 8)
    assert out["positive_share_true"] == pytest.approx(4 / 8)
    # groups: "not A" rows 4..7 all right (4/4), "A" rows 0..3 get 1,1,0,0 vs 1,1,1,0 (3/4)
    assert out["calibrated_worst_group_accuracy"] == pytest.approx(0.75)
    assert out["calibrated_worst_group"] == "a=A"


def test_threshold_calibration_is_none_with_a_reason_when_it_cannot_apply():
    calib = _logits(np.array([0, 1, 0]))
    multi = threshold_calibration(Y % 3, _logits(Y, 3), _logits(Y, 3), Y, None, 3)
    assert multi == {"threshold_calibration_unavailable_reason":
                     "threshold calibration needs a binary target; this dataset has 3 classes"}
    missing = threshold_calibration(Y, _logits(Y), None, None, None, 2)
    assert "not scored" in missing["threshold_calibration_unavailable_reason"]
    no_pos = threshold_calibration(Y, _logits(Y), calib, np.zeros(3, int), None, 2)
    assert no_pos == {"threshold_calibration_unavailable_reason": "the calibration split has no positive sample"}


# ---------------------------------------------------------------- the point record

def _point(comp_pred, dense_pred=Y, groups=None, **kw):
    return bias_stats(Y, dense_pred[None], comp_pred[None], _logits(comp_pred), ["no", "yes"],
                      groups=groups or _groups(), n_boot=200, **kw)


def test_identical_models_give_zero_group_deltas_not_significant_and_zero_amplification_change():
    stats = _point(Y)
    assert stats.per_group_delta_ci == {"a=not A": [0.0, 0.0], "a=A": [0.0, 0.0]}
    assert stats.per_group_delta_significant == {"a=not A": False, "a=A": False}
    assert stats.bias_amp_a_to_t_delta == 0.0
    assert stats.per_group_fpr_delta == {"a=not A": 0.0, "a=A": 0.0}
    assert stats.n_cie == 0


def test_a_group_wiped_out_by_compression_has_a_negative_significant_interval():
    n = 400
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    g = (np.arange(n) < 100).astype(int)  # 100 samples in group "A"
    comp = np.where(g == 1, 1 - y, y)  # every "A" sample flipped, the rest untouched
    stats = bias_stats(y, y[None], comp[None], _logits(comp), ["no", "yes"],
                       groups=GroupData({"a": g}, LEVELS, ["a"]), n_boot=200)
    assert stats.per_group_delta_ci["a=A"] == [-1.0, -1.0]
    assert stats.per_group_delta_significant == {"a=A": True, "a=not A": False}
    assert stats.cie_group_rel_rep["a=A"] == pytest.approx(4.0)  # all CIE in a quarter of the split
    assert stats.per_group_fnr_delta["a=A"] == pytest.approx(1.0)


def test_cev_variant_is_recorded_and_normalised_cev_is_the_documented_multiple_of_the_reference():
    rng = np.random.default_rng(1)
    y, dense, comp = rng.integers(0, 4, 500), rng.integers(0, 4, 500), rng.integers(0, 4, (3, 500))
    names = list("abcd")
    ref = bias_stats(y, dense[None], comp, _logits(comp[0], 4), names, n_boot=20)
    norm = bias_stats(y, dense[None], comp, _logits(comp[0], 4), names, n_boot=20, cev_variant="normalised")
    assert (ref.cev_variant, norm.cev_variant) == ("reference", "normalised")
    assert norm.cev == pytest.approx(2 * ref.cev / 100**2)
    assert norm.cev == pytest.approx(cev_sde(y, dense, comp, 4, variant="normalised").cev)


def test_multiclass_point_without_groups_says_why_amplification_and_calibration_are_missing():
    rng = np.random.default_rng(2)
    y, p = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    stats = bias_stats(y, p[None], p[None], _logits(p, 3), ["a", "b", "c"], n_boot=10)
    assert stats.bias_amp_a_to_t is None and stats.bias_amp_unavailable_reason == "the dataset has no group attributes"
    assert stats.calibrated_top1 is None and "binary target" in stats.threshold_calibration_unavailable_reason
    assert stats.per_group_delta_ci == {}


def test_a_stored_point_from_before_these_fields_still_loads_with_their_defaults():
    stats = _point(ATTR)
    old = to_dict(stats)
    for key in list(old):
        if key not in ("population_size", "cev", "sde", "cev_dropped_classes", "cev_ci", "cie_fraction", "n_cie",
                       "cie_plain_disagreement", "cie_ci", "cie_error_share", "cie_class_rel_rep", "ece",
                       "ece_sweep", "uncertain_share", "n_classes_hurt", "susceptibility_auroc",
                       "per_class_delta_ci", "per_class_delta_significant", "n_boot"):
            del old[key]
    point = point_from_dict({"point_id": "p", "variant_id": "v", "variant_name": "x", "runtime": "onnxruntime",
                             "batch_size": 1, "prune_method": "none", "prune_amount": 0.0, "precision": "fp32",
                             "status": "ok", "bias": old})
    assert point.bias.cev_variant == "reference" and point.bias.bias_amp_a_to_t is None
    assert point.bias.per_group_delta_ci == {}


# ---------------------------------------------------------------- intersections in accuracy records

def test_intersection_accuracy_agrees_with_fairlearn_and_small_cells_are_flagged_not_hidden():
    fl = pytest.importorskip("fairlearn.metrics")
    pd = pytest.importorskip("pandas")
    from sklearn.metrics import accuracy_score

    from harness.metrics.groups import with_intersections

    rng = np.random.default_rng(4)
    n = 300
    sex, age = rng.integers(0, 2, n), (rng.random(n) < 0.1).astype(int)  # "old" is rare
    y, pred = rng.integers(0, 3, n), rng.integers(0, 3, n)
    groups, levels = with_intersections({"sex": sex, "age": age}, {"sex": ["f", "m"], "age": ["young", "old"]},
                                        [["sex", "age"]])
    stats = accuracy_stats(y, pred, ["0", "1", "2"], groups, levels, min_group_support=20)
    frame = fl.MetricFrame(metrics=accuracy_score, y_true=y, y_pred=pred,
                           sensitive_features=pd.DataFrame({"sex": np.array(["f", "m"])[sex],
                                                            "age": np.array(["young", "old"])[age]}))
    for (s, a), value in frame.by_group.items():
        assert stats.per_group_accuracy["sex&age"][f"{s}&{a}"] == pytest.approx(value)
    supports = stats.per_group_support["sex&age"]
    assert stats.small_support_groups == [f"sex&age={k}" for k, v in supports.items() if v < 20]
    assert any(k.endswith("old") for k in stats.small_support_groups)
    assert all(v is not None for v in stats.per_group_accuracy["sex&age"].values())  # still reported
    assert stats.min_group_support == 20


def test_per_group_delta_against_the_dense_model_hand_computed():
    groups, levels = {"a": ATTR}, LEVELS
    dense = accuracy_stats(Y, Y, ["no", "yes"], groups, levels)
    comp = accuracy_stats(Y, ATTR, ["no", "yes"], groups, levels)  # "A": 3/4 right, "not A": 3/4 right
    delta = against_baseline(comp, dense).per_group_delta
    assert delta == {"a": {"not A": pytest.approx(-0.25), "A": pytest.approx(-0.25)}}
