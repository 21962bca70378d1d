"""Datasets: each loader returns a :class:`~harness.data.base.Dataset` with disjoint splits."""

from harness.registry import Registry

DATASETS = Registry("dataset")
DATASETS.register("digits", "harness.data.digits:load_digits_dataset")
