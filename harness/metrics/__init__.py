"""Accuracy and bias metrics: pure numpy functions, each documented with its formula and paper.

Formulas, reference-code choices and edge cases follow ``shared/research/metrics.md``.
"""

from harness.metrics.amplification import (
    BiasAmplification,
    apply_thresholds,
    biasamp_directional,
    calibrate_thresholds,
)
from harness.metrics.bias import (
    CevSde,
    CieReport,
    DisproportionateImpact,
    cev_sde,
    cie_report,
    disproportionate_impact,
    modal_cie,
    modal_labels,
    pie_all_disagree,
    taxicab_cie,
    taxicab_scores,
)
from harness.metrics.bootstrap import BootstrapCI, bootstrap_ci, significant
from harness.metrics.calibration import EceSweep, UncertainShare, ece, ece_sweep, is_uncertain, softmax, uncertain_share
from harness.metrics.classification import accuracy_stats, against_baseline
from harness.metrics.groups import (
    GroupMetrics,
    add_intersection,
    confusion_matrix,
    disaggregate_by_class,
    group_masks,
    one_vs_rest_counts,
    top_k_accuracy,
)
from harness.metrics.susceptibility import PredictivePower, SusceptibilityScores, auroc, dense_scores, predictive_power

__all__ = [
    "BiasAmplification", "BootstrapCI", "CevSde", "CieReport", "DisproportionateImpact", "EceSweep",
    "GroupMetrics", "PredictivePower", "SusceptibilityScores", "UncertainShare",
    "accuracy_stats", "add_intersection", "against_baseline", "apply_thresholds", "auroc", "biasamp_directional",
    "bootstrap_ci", "calibrate_thresholds", "cev_sde", "cie_report", "confusion_matrix", "dense_scores",
    "disaggregate_by_class", "disproportionate_impact", "ece", "ece_sweep", "group_masks", "is_uncertain",
    "modal_cie", "modal_labels", "one_vs_rest_counts", "pie_all_disagree", "predictive_power", "significant",
    "softmax", "taxicab_cie", "taxicab_scores", "top_k_accuracy", "uncertain_share",
]
