"""Splits are disjoint, seeded and recorded; the long tail touches only the training split."""

from __future__ import annotations

import numpy as np
import pytest

from harness.config import DatasetSpec, LongTailSpec
from harness.data.base import stratified_split
from harness.data.digits import load_digits_dataset
from harness.errors import ConfigError, InputError


def test_splits_are_disjoint_and_cover_the_dataset_without_long_tail():
    ds = load_digits_dataset(DatasetSpec(image_size=None), seed=0)
    idx = [set(s.index.tolist()) for s in ds.splits()]
    assert not (idx[0] & idx[1]) and not (idx[0] & idx[2]) and not (idx[1] & idx[2])
    assert sum(len(i) for i in idx) == 1797
    assert ds.input_shape == [1, 8, 8]
    info = ds.info()
    assert [s.n_samples for s in info.splits] == [len(s) for s in ds.splits()]


def test_same_seed_same_split_other_seed_other_split():
    a = load_digits_dataset(DatasetSpec(image_size=None), seed=0)
    b = load_digits_dataset(DatasetSpec(image_size=None), seed=0)
    c = load_digits_dataset(DatasetSpec(image_size=None), seed=1)
    assert np.array_equal(a.evaluation.index, b.evaluation.index)
    assert not np.array_equal(a.evaluation.index, c.evaluation.index)


def test_long_tail_shrinks_only_the_named_classes_in_training():
    spec = DatasetSpec(image_size=None, long_tail=LongTailSpec(classes=[3, 8], keep_fraction=0.2))
    full = load_digits_dataset(DatasetSpec(image_size=None), seed=0)
    tail = load_digits_dataset(spec, seed=0)
    for c in range(10):
        n_full, n_tail = int((full.train.y == c).sum()), int((tail.train.y == c).sum())
        if c in (3, 8):
            assert n_tail == round(0.2 * n_full)
        else:
            assert n_tail == n_full
    assert np.array_equal(full.evaluation.index, tail.evaluation.index)
    assert tail.under_represented == ["3", "8"]


def test_resize_and_normalisation_are_applied_and_recorded():
    ds = load_digits_dataset(DatasetSpec(image_size=16, mean=0.5, std=0.5), seed=0)
    assert ds.input_shape == [1, 16, 16]
    assert ds.train.x.dtype == np.float32
    assert -1.01 <= ds.train.x.min() and ds.train.x.max() <= 1.01
    assert ds.preprocessing["resize"] == 16


def test_long_tail_class_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match="long_tail.classes"):
        load_digits_dataset(DatasetSpec(long_tail=LongTailSpec(classes=[12])), seed=0)


def test_a_split_that_comes_out_empty_is_an_input_error():
    with pytest.raises(InputError, match="empty"):
        stratified_split(np.array([0, 1]), {"train": 0.9, "calibration": 0.05, "evaluation": 0.05}, 0)
