"""Accuracy and bias metrics, disaggregated by class (and, later, by group)."""

from harness.metrics.classification import accuracy_stats, against_baseline

__all__ = ["accuracy_stats", "against_baseline"]
