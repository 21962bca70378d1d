"""Datasets: each loader returns a :class:`~harness.data.base.Dataset` with disjoint splits."""

from collections.abc import Callable
from typing import Any

from harness.registry import Registry

DATASETS: Registry[Callable[..., Any]] = Registry("dataset")
DATASETS.register("digits", "harness.data.digits:load_digits_dataset")
DATASETS.register("cifar10", "harness.data.cifar:load_cifar10_dataset")
DATASETS.register("cifar100", "harness.data.cifar:load_cifar100_dataset")
DATASETS.register("imagefolder", "harness.data.folders:load_imagefolder_dataset")
DATASETS.register("manifest", "harness.data.folders:load_manifest_dataset")
DATASETS.register("celeba", "harness.data.celeba:load_celeba_dataset")
DATASETS.register("npz", "harness.data.npz:load_npz_dataset")
