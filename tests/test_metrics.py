"""Per-class accuracy against hand-computed cases and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import InputError
from harness.metrics import accuracy_stats, against_baseline

NAMES = ["a", "b", "c"]


def test_hand_computed_per_class_recall():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    s = accuracy_stats(y, p, NAMES)
    assert s.top1 == pytest.approx(6 / 8)
    assert s.per_class_recall == {"a": 0.75, "b": 0.5, "c": 1.0}
    assert s.per_class_support == {"a": 4, "b": 2, "c": 2}
    assert (s.worst_class, s.worst_class_recall) == ("b", 0.5)


def test_class_absent_from_evaluation_is_unsupported_not_zero():
    s = accuracy_stats(np.array([0, 0, 1]), np.array([0, 1, 1]), NAMES)
    assert s.per_class_recall["c"] is None and s.per_class_support["c"] == 0
    assert s.worst_class == "a"


def test_agrees_with_scikit_learn_on_random_data():
    from sklearn.metrics import accuracy_score, recall_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 500)
    p = np.where(rng.random(500) < 0.7, y, rng.integers(0, 5, 500))
    s = accuracy_stats(y, p, list("vwxyz"))
    expected = recall_score(y, p, average=None, labels=range(5))
    assert list(s.per_class_recall.values()) == pytest.approx(list(expected))
    assert s.top1 == pytest.approx(accuracy_score(y, p))


def test_deltas_against_the_dense_baseline_are_signed_compressed_minus_dense():
    y = np.array([0, 0, 1, 1, 2, 2])
    dense = accuracy_stats(y, np.array([0, 0, 1, 1, 2, 0]), NAMES)
    comp = accuracy_stats(y, np.array([0, 0, 1, 0, 2, 2]), NAMES)
    d = against_baseline(comp, dense)
    assert d.per_class_delta == {"a": 0.0, "b": -0.5, "c": 0.5}
    assert d.top1_delta == pytest.approx(0.0)
    assert d.worst_class_drop == pytest.approx(0.0)  # both worst classes sit at 0.5


def test_bad_inputs_are_input_errors():
    with pytest.raises(InputError, match="empty"):
        accuracy_stats(np.array([], dtype=int), np.array([], dtype=int), NAMES)
    with pytest.raises(InputError, match="outside"):
        accuracy_stats(np.array([0, 3]), np.array([0, 0]), NAMES)
