"""Bias metrics against hand-computed cases, scikit-learn and the sanity tests of research/metrics.md."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.errors import InputError
from harness.metrics import (
    apply_thresholds,
    auroc,
    biasamp_directional,
    bootstrap_ci,
    calibrate_thresholds,
    cev_sde,
    cie_report,
    dense_scores,
    disproportionate_impact,
    ece,
    ece_sweep,
    modal_cie,
    modal_labels,
    pie_all_disagree,
    predictive_power,
    significant,
    softmax,
    taxicab_cie,
    taxicab_scores,
    uncertain_share,
)


def _population(rng, y, k, flip, n_classes):
    """K noisy copies of y: each label replaced by a random one with probability ``flip``."""
    noise = rng.integers(0, n_classes, (k, len(y)))
    return np.where(rng.random((k, len(y))) < flip, noise, y[None, :])


# ---------------------------------------------------------------- CEV / SDE

Y3 = np.array([0, 0, 1, 1, 2, 2])
BASE3 = np.array([0, 1, 1, 2, 2, 0])  # every class: FPR 1/4, FNR 1/2
COMP3 = np.array([BASE3, [0, 0, 1, 2, 2, 0]])  # second model: class 0 FNR 0, class 1 FPR 0


def test_cev_sde_hand_computed_reference_averages_rates_over_the_population_first():
    # mean rates: class 0 (1/4, 1/4), class 1 (1/8, 1/2), class 2 (1/4, 1/2)
    # points: (0, -50), (-50, 0), (0, 0) percent
    r = cev_sde(Y3, BASE3, COMP3, 3)
    np.testing.assert_allclose(r.points, [[0, -50], [-50, 0], [0, 0]], atol=1e-12)
    assert r.cev == pytest.approx(0.5 * (5000 / 9 + 5000 / 9))
    assert r.sde == pytest.approx((100 / 3) / math.sqrt(2))
    assert r.dropped_classes == () and r.classes == (0, 1, 2) and r.n_models == 2


def test_cev_sde_normalised_variant_is_twice_the_variance_in_fractions_without_root_two():
    r = cev_sde(Y3, BASE3, COMP3, 3, variant="normalised")
    assert r.cev == pytest.approx(1 / 9) and r.sde == pytest.approx(1 / 3)


def test_cev_sde_variants_differ_by_the_documented_factors_on_random_data():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 6, 600)
    base, comp = _population(rng, y, 1, 0.3, 6)[0], _population(rng, y, 4, 0.4, 6)
    ref, norm = cev_sde(y, base, comp, 6), cev_sde(y, base, comp, 6, variant="normalised")
    assert norm.cev == pytest.approx(2 * ref.cev / 100**2)
    assert norm.sde == pytest.approx(math.sqrt(2) * ref.sde / 100)


def test_identical_populations_give_empty_cie_and_zero_cev_and_sde():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 400)
    base = _population(rng, y, 3, 0.3, 5)
    assert not modal_cie(base, base.copy()).any()
    r = cev_sde(y, base[0], np.repeat(base[:1], 4, axis=0), 5)
    assert r.cev == 0 and r.sde == 0 and len(r.classes) == 5
    assert pie_all_disagree(base[0], base) == 0


def _cyclic(errors_per_class, n_per_class=4, step=1):
    """Balanced 3-class labels where class c sends ``errors[c]`` examples to class c + step (mod 3)."""
    y, p = [], []
    for c, e in enumerate(errors_per_class):
        y += [c] * n_per_class
        p += [(c + step) % 3] * e + [c] * (n_per_class - e)
    return np.array(y), np.array(p)


def test_scaling_every_class_rate_by_one_factor_gives_zero_cev_and_zero_sde():
    # comp halves every class's errors: FPR and FNR of every class halve, all points equal (-50, -50).
    # (With real predictions the FPR and FNR factors are forced equal: sum FP = sum FN = #errors.)
    y, base = _cyclic([2, 2, 2])
    _, comp = _cyclic([1, 1, 1])
    r = cev_sde(y, base, comp, 3)
    np.testing.assert_allclose(r.points, -50.0)
    assert r.cev == pytest.approx(0) and r.sde == pytest.approx(0)


def test_swapping_fpr_and_fnr_leaves_cev_and_sde_unchanged():
    # Errors sent to c+1 give point_c = (r_{c-1} - 1, r_c - 1); sent to c-1, (r_{c+1} - 1, r_c - 1):
    # the second point set is the first with x and y swapped (up to class order).
    y, base_f = _cyclic([2, 1, 2], step=1)
    _, comp_f = _cyclic([1, 1, 3], step=1)
    _, base_b = _cyclic([2, 1, 2], step=2)
    _, comp_b = _cyclic([1, 1, 3], step=2)
    fwd, bwd = cev_sde(y, base_f, comp_f, 3), cev_sde(y, base_b, comp_b, 3)
    assert sorted(map(tuple, np.round(fwd.points[:, ::-1], 9))) == sorted(map(tuple, np.round(bwd.points, 9)))
    assert fwd.sde > 0
    assert bwd.cev == pytest.approx(fwd.cev) and bwd.sde == pytest.approx(fwd.sde)


def test_cev_sde_invariant_to_class_relabelling_and_model_order():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 300)
    base, comp = _population(rng, y, 1, 0.3, 4)[0], _population(rng, y, 3, 0.4, 4)
    perm = np.array([2, 0, 3, 1])
    a, b = cev_sde(y, base, comp, 4), cev_sde(perm[y], perm[base], perm[comp[::-1]], 4)
    assert b.cev == pytest.approx(a.cev) and b.sde == pytest.approx(a.sde)


def test_classes_with_zero_or_undefined_baseline_rate_are_dropped_and_counted():
    y = np.array([0, 0, 1, 1, 2, 2])
    base = np.array([0, 0, 1, 2, 2, 1])  # class 0 FNR = 0; class 3 has no support (0/0)
    comp = np.array([[0, 1, 1, 2, 2, 1]])
    r = cev_sde(y, base, comp, 4)
    assert r.dropped_classes == (0, 3) and r.classes == (1, 2) and r.points.shape == (2, 2)
    eps = cev_sde(y, base, comp, 4, zero_rate="epsilon")
    assert eps.dropped_classes == (3,) and eps.points[0, 1] == pytest.approx(100 * 0.5 / 1e-6)


def test_cev_sde_is_none_when_every_class_is_dropped():
    y = np.array([0, 0, 1, 1])
    r = cev_sde(y, y, np.array([[0, 1, 1, 1]]), 2)  # a perfect baseline has zero rates everywhere
    assert r.cev is None and r.sde is None and r.dropped_classes == (0, 1)


def test_pie_all_disagree_counts_examples_every_compressed_model_gets_different_from_the_teacher():
    assert pie_all_disagree(np.array([0, 1, 2]), np.array([[1, 1, 0], [2, 1, 0]])) == 2


# ---------------------------------------------------------------- CIE (Hooker et al.)

TIED = np.array([[0, 2, 1], [1, 2, 1], [1, 0, 0], [0, 0, 0]])


def test_modal_label_ties_go_to_the_largest_label_by_default_or_the_smallest_on_request():
    assert modal_labels(TIED).tolist() == [1, 2, 1]
    assert modal_labels(TIED, tie="min").tolist() == [0, 0, 0]
    assert modal_labels(np.array([[2, 0], [2, 1], [0, 1]])).tolist() == [2, 1]  # clear majorities
    assert modal_cie(TIED, np.array([[1, 2, 0]])).tolist() == [False, False, True]
    assert modal_cie(TIED, np.array([[1, 2, 0]]), tie="min").tolist() == [True, True, False]


def test_flipped_binary_population_with_odd_k_makes_every_example_a_cie():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2, (5, 200))
    assert modal_cie(base, 1 - base).all()


def test_with_one_model_per_side_cie_is_plain_disagreement_and_is_labelled_so():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 100)
    a, b = _population(rng, y, 1, 0.3, 3)[0], _population(rng, y, 1, 0.3, 3)[0]
    cie = modal_cie(a, b)
    assert (cie == (a != b)).all()
    assert cie_report(cie, y, a, b).plain_disagreement
    assert not cie_report(cie, y, np.stack([a, a, a]), b).plain_disagreement


def test_taxicab_score_hand_computed_and_modal_cie_lies_inside_its_support():
    base, comp = np.array([[0, 1], [1, 1]]), np.array([[2, 1]])
    assert taxicab_scores(base, comp, 3).tolist() == [2.0, 0.0]  # |0-.5| + |0-.5| + |1-0|
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 500)
    b, c = _population(rng, y, 5, 0.4, 4), _population(rng, y, 5, 0.6, 4)
    d, cie = taxicab_scores(b, c, 4), modal_cie(b, c)
    assert cie.any() and (d[cie] > 0).all() and d.max() <= 2
    top = taxicab_cie(b, c, 4)  # q=None: same size as the modal CIE
    assert top.sum() == cie.sum() and d[top].min() >= d[~top].max()
    assert taxicab_cie(b, c, 4, q=0.1).sum() == 50


def test_taxicab_cie_breaks_score_ties_by_index():
    base, comp = np.zeros((1, 4), int), np.array([[1, 0, 1, 1]])
    assert taxicab_cie(base, comp, 2, q=0.5).tolist() == [True, False, True, False]


def test_cie_report_hand_computed():
    y = np.array([0, 0, 0, 1, 1, 1])
    base, comp = y.copy(), np.array([0, 1, 0, 1, 0, 0])
    g = np.array([1, 1, 0, 0, 0, 1], bool)
    cie = modal_cie(base, comp)
    r = cie_report(cie, y, base, comp, {"g": g})
    assert (r.n_cie, r.fraction, r.n_comp_modal_correct) == (3, 0.5, 0)
    assert (r.base.accuracy_cie, r.base.accuracy_rest, r.base.error_share) == (1.0, 1.0, None)
    assert (r.comp.accuracy_cie, r.comp.accuracy_rest, r.comp.error_share) == (0.0, 1.0, 1.0)
    assert r.by_class[0].rel_rep == pytest.approx(2 / 3) and r.by_class[0].diff_pp == pytest.approx(-100 / 6)
    assert r.by_class[1].rel_rep == pytest.approx(4 / 3)
    assert (r.by_group["g"].n_all, r.by_group["g"].n_cie, r.by_group["g"].rel_rep) == (3, 2, pytest.approx(4 / 3))
    e = r.group_error_rates["g"]
    assert (e.fpr_base, e.fpr_comp, e.fnr_base, e.fnr_comp) == (0.0, 0.5, 0.0, 1.0)
    assert (e.fpr_delta, e.fnr_delta, e.fpr_rel_delta) == (0.5, 1.0, None)


def test_cie_report_counts_compression_correct_cie_and_averages_accuracy_over_the_population():
    y = np.array([1, 1, 0, 0])
    base = np.array([[0, 1, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0]])  # modal 0 on example 0 (wrong)
    comp = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 1]])  # modal 1 on example 0 (right)
    r = cie_report(modal_cie(base, comp), y, base, comp)
    assert r.n_cie == 1 and r.n_comp_modal_correct == 1
    assert r.base.accuracy_cie == pytest.approx(1 / 3) and r.base.modal_accuracy_cie == 0.0
    assert r.comp.accuracy_rest == pytest.approx(8 / 9) and r.comp.error_share == 0.0


def test_relative_representation_is_one_in_expectation_for_a_uniform_random_cie():
    rng = np.random.default_rng(6)
    n = 20_000
    y, g = rng.integers(0, 2, n), rng.random(n) < 0.3
    reps = [cie_report(rng.random(n) < 0.1, y, y, y, {"g": g}).by_group["g"].rel_rep for _ in range(10)]
    assert np.mean(reps) == pytest.approx(1.0, abs=0.03)


def test_cie_fraction_grows_when_the_sparser_population_flips_a_superset_of_examples():
    rng = np.random.default_rng(7)
    base = np.repeat(rng.integers(0, 2, (1, 1000)), 5, axis=0)
    flip90, extra = rng.random(1000) < 0.05, rng.random(1000) < 0.05
    comp90, comp95 = np.where(flip90, 1 - base, base), np.where(flip90 | extra, 1 - base, base)
    assert modal_cie(base, comp95).mean() >= modal_cie(base, comp90).mean()


def test_modal_cie_rejects_populations_of_different_examples():
    with pytest.raises(InputError):
        modal_cie(np.zeros((3, 5), int), np.zeros((3, 6), int))


# ---------------------------------------------------------------- disproportionate impact

def test_disproportionate_impact_hand_computed_absolute_and_relative():
    dense, comp = {"a": 0.9, "b": 0.8, "c": 0.5, "d": None}, {"a": 0.88, "b": 0.7, "c": 0.2, "d": 0.1}
    r = disproportionate_impact(dense, comp, 0.85, 0.80)
    assert r.classes_hurt == ("b", "c") and r.n_classes_hurt == 2 and r.per_class_delta["d"] is None
    assert (r.worst_class, r.worst_class_drop) == ("c", pytest.approx(0.3))
    rel = disproportionate_impact(dense, comp, 0.85, 0.80, relative=True)
    assert rel.classes_hurt == ("b", "c")
    assert disproportionate_impact([0.5, 0.5], [0.49, 0.5], 0.5, 0.48).n_classes_hurt == 0


# ---------------------------------------------------------------- calibration

def test_ece_two_bins_hand_computed():
    probs = np.array([[.4, .2, .2, .2], [.3, .25, .25, .2], [.8, .1, .05, .05], [.1, .6, .2, .1], [.9, .05, .03, .02]])
    y = np.array([0, 1, 0, 1, 2])
    # bin [0, .5): conf .35, acc .5, weight 2/5; bin [.5, 1]: conf .7667, acc 2/3, weight 3/5
    assert ece(probs, y, n_bins=2) == pytest.approx(0.4 * 0.15 + 0.6 * 0.1)


def test_ece_sweep_hand_computed_monotone_to_the_end_and_stopping_early():
    f = np.array([0.1, 0.2, 0.3, 0.4])
    r = ece_sweep(f, np.array([0, 0, 1, 1]), p=1)
    assert r.n_bins == 3 and r.ece == pytest.approx(0.5 * 0.15 + 0.25 * 0.7 + 0.25 * 0.6)
    p2 = math.sqrt(0.5 * 0.15**2 + 0.25 * 0.7**2 + 0.25 * 0.6**2)  # default p = 2
    assert ece_sweep(f, np.array([0, 0, 1, 1])).ece == pytest.approx(p2)
    early = ece_sweep(f, np.array([1, 0, 1, 0]), p=1)  # b = 3 gives means .5, 1, 0
    assert early.n_bins == 2 and early.ece == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)


def _naive_sweep_bins(f, y, scheme):
    """Direct transcription of research/metrics.md section 7."""
    order = np.argsort(f, kind="stable")
    rank = np.empty(len(f), int)
    rank[order] = np.arange(len(f))
    best = 1
    for b in range(2, len(f)):
        bins = rank * b // len(f) if scheme == "em" else np.floor(f * b).astype(int)
        bins = np.minimum(b - 1, bins)
        means = [y[bins == j].mean() for j in range(b) if (bins == j).any()]
        if np.any(np.diff(means) < 0):
            break
        best = b
    return best


@pytest.mark.parametrize("scheme", ["em", "ew"])
def test_ece_sweep_keeps_the_largest_monotonic_binning_like_a_direct_transcription(scheme):
    rng = np.random.default_rng(8)
    for _ in range(5):
        f = rng.random(300)
        y = (rng.random(300) < f).astype(int)
        assert ece_sweep(f, y, scheme=scheme).n_bins == _naive_sweep_bins(f, y, scheme)


def test_ece_sweep_with_constant_confidence_and_equal_width_bins_is_the_mean_gap():
    y = np.array([1, 0, 0, 1, 1])
    for p in (1, 2):
        assert ece_sweep(np.full(5, 0.3), y, scheme="ew", p=p).ece == pytest.approx(abs(0.6 - 0.3))


def test_ece_sweep_is_less_biased_than_15_bin_ece_on_perfectly_calibrated_data():
    rng = np.random.default_rng(9)
    sweep, binned = [], []
    for _ in range(30):
        f = rng.random(200)
        y = (rng.random(200) < f).astype(int)
        sweep.append(ece_sweep(f, y, p=1).ece)
        binned.append(ece(f, y, n_bins=15))
    assert np.mean(sweep) < np.mean(binned)
    f = rng.random(20_000)
    assert ece_sweep(f, (rng.random(20_000) < f).astype(int), p=1).ece < 0.02


def test_uncertain_share_overall_and_per_true_or_predicted_class():
    probs = np.array([[0.95, 0.05], [0.6, 0.4], [0.2, 0.8], [0.05, 0.95]])
    r = uncertain_share(probs, 0.9)
    assert r.overall == 0.5 and r.per_class == {0: 0.5, 1: 0.5} and r.basis == "predicted"
    t = uncertain_share(probs, 0.9, y=np.array([0, 0, 0, 1]))
    assert t.per_class == {0: pytest.approx(2 / 3), 1: 0.0} and t.basis == "true"
    assert uncertain_share(np.array([0.05, 0.5, 0.95, 0.1]), 0.9).overall == 0.25  # p in (0.1, 0.9)
    np.testing.assert_allclose(softmax(np.array([[0.0, np.log(3)]])), [[0.25, 0.75]])


# ---------------------------------------------------------------- susceptibility

def test_auroc_matches_scikit_learn_with_tied_scores():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(10)
    for _ in range(5):
        s = np.round(rng.random(400), 1)  # heavy ties
        pos = rng.random(400) < 0.2 + 0.5 * s
        assert auroc(s, pos) == pytest.approx(roc_auc_score(pos, s))
    assert auroc(np.ones(3), np.zeros(3, bool)) is None


def test_predictive_power_precision_and_recall_of_the_flagged_set():
    score, cie = np.array([0.9, 0.8, 0.1, 0.7, 0.2]), np.array([1, 0, 0, 1, 0], bool)
    r = predictive_power(score, cie)  # q = 2/5: flags examples 0 and 1
    assert (r.n_flagged, r.precision, r.recall, r.base_rate, r.lift) == (2, 0.5, 0.5, 0.4, 1.25)
    assert r.auroc == pytest.approx(5 / 6)
    r3 = predictive_power(score, cie, q=0.6)
    assert (r3.precision, r3.recall) == (pytest.approx(2 / 3), 1.0)
    assert predictive_power(score, cie, flagged=score > 0.75).precision == 0.5


def test_dense_scores_average_over_the_population():
    probs = np.array([[[0.9, 0.1, 0.0], [0.5, 0.3, 0.2]], [[0.7, 0.2, 0.1], [0.3, 0.5, 0.2]]])
    s = dense_scores(probs)
    np.testing.assert_allclose(s.uncertainty, [0.2, 0.5])
    np.testing.assert_allclose(s.margin, [0.65, 0.0])
    assert s.n_models == 2


# ---------------------------------------------------------------- bias amplification and thresholds

A1 = np.array([1, 1, 1, 1, 0, 0, 0, 0])
T1 = np.array([1, 1, 1, 0, 1, 0, 0, 0])


def test_bias_amplification_hand_computed_and_the_indicator_row_choice_matters():
    that = np.array([1, 1, 1, 1, 0, 0, 0, 0])  # P(T^=1 | A=1) = 1 vs P(T=1 | A=1) = 3/4
    # all rows: P(a,t) = 3/8 > P(a)P(t) = 1/4 -> +1; rows with a positive: 3/5 < 16/25 -> -1;
    # rows with a positive task: 3/4 = 3/4 * 1 -> 0
    assert biasamp_directional(T1, A1, that, indicator_rows="all").value == pytest.approx(0.25)
    assert biasamp_directional(T1, A1, that).value == pytest.approx(-0.25)
    assert biasamp_directional(T1, A1, that, indicator_rows="task").value == 0.0
    ahat = np.array([1, 1, 1, 0, 1, 0, 0, 0])  # P(A^=1 | T=1) = 1 vs P(A=1 | T=1) = 3/4
    assert biasamp_directional(T1, A1, ahat, direction="T->A", indicator_rows="all").value == pytest.approx(0.25)


def test_bias_amplification_is_zero_for_perfect_predictions_and_skips_empty_pairs():
    attrs = np.stack([A1, np.zeros(8, int)], axis=1)  # second attribute never positive: Δ undefined
    r = biasamp_directional(T1, attrs, T1)
    assert r.value == 0.0 and r.n_pairs == 1 and np.isnan(r.delta[1, 0])
    assert biasamp_directional(T1, A1, A1, direction="T->A").value == 0.0


def test_bias_amplification_direction_indicator_uses_training_labels_when_given():
    that = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    flipped = biasamp_directional(T1, A1, that, task_y_train=T1, attr_y_train=1 - A1, indicator_rows="all")
    assert flipped.value == pytest.approx(-0.25)
    with pytest.raises(InputError):
        biasamp_directional(T1, A1, that, task_y_train=T1)


def test_calibrated_threshold_predicts_k_minus_one_validation_positives():
    rng = np.random.default_rng(11)
    z, y = rng.normal(size=(101, 3)), np.zeros((101, 3), int)
    y[:30, 0], y[:1, 1] = 1, 1  # k = 30, 1, 0
    t = calibrate_thresholds(z, y)
    assert apply_thresholds(z, t).sum(axis=0).tolist() == [29, 0, 0]
    assert t[2] == np.inf and t[0] == np.sort(z[:, 0])[-30]


# ---------------------------------------------------------------- bootstrap

def test_bootstrap_ci_covers_the_true_mean_and_is_reproducible():
    x = np.random.default_rng(12).normal(3.0, 1.0, 200)
    ci = bootstrap_ci(np.mean, x, n_boot=500, seed=1)
    assert ci.low < 3.0 < ci.high and ci.estimate == pytest.approx(x.mean()) and ci.n_valid == 500
    assert bootstrap_ci(np.mean, x, n_boot=500, seed=1) == ci
    assert bootstrap_ci(np.mean, x, n_boot=500, seed=2) != ci
    assert significant(ci) and not significant(bootstrap_ci(np.mean, x - 3.0, n_boot=500, seed=1))


def test_bootstrap_resamples_all_arrays_jointly_and_skips_undefined_replicates():
    x = np.random.default_rng(13).normal(size=100)
    ci = bootstrap_ci(lambda a, b: float(np.mean(a - b)), x, x.copy(), n_boot=200)
    assert ci.low == ci.high == 0.0 and not significant(ci)
    rare = np.zeros(30)
    rare[0] = 1
    ci = bootstrap_ci(lambda a: 1.0 if a.sum() else None, rare, n_boot=200)
    assert 0 < ci.n_valid < 200 and ci.low == ci.high == 1.0
