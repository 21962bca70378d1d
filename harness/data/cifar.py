"""CIFAR-10 and CIFAR-100 from the standard Python-pickle directories.

The official test batch is the evaluation split, so accuracies compare with published
ones; the calibration split is a stratified, seeded ``calibration / (train + calibration)``
share of the five training batches (``dataset.split.evaluation`` is not used). Sample
indices count the training images first (0..49999), then the test images.

The batches are pickles, so they are read with an unpickler that only rebuilds numpy
arrays: a file that names any other global is refused and never executed.
"""

from __future__ import annotations

import importlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import DatasetSpec
from harness.data import preprocess
from harness.data.base import Dataset, apply_long_tail, build_dataset, check_spec, stratified_split
from harness.errors import InputError

NEVER_DOWNLOADS = "download it yourself: the harness never downloads"
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
CIFAR10_MISSING = (
    "cifar10: {where} not found; expected data_batch_1..5, test_batch, batches.meta "
    f"from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz ({NEVER_DOWNLOADS})"
)
CIFAR100_MISSING = (
    "cifar100: {where} not found; expected train, test, meta "
    f"from https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz ({NEVER_DOWNLOADS})"
)
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    """Rebuilds numpy arrays and builtins; refuses every other global (no code runs)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: a CIFAR batch holds only arrays")
        if module.startswith(("numpy.core.", "numpy._core.")):  # numpy 1.x and 2.x spell it differently
            tail = module.split(".", 2)[2]
            for candidate in (f"numpy._core.{tail}", f"numpy.core.{tail}"):
                try:
                    return getattr(importlib.import_module(candidate), name)
                except ImportError:
                    continue
        return getattr(importlib.import_module(module), name)


def read_batch(path: Path, who: str) -> dict[bytes, Any]:
    """One pickle of the CIFAR distribution, keys as bytes (the files were written by Python 2)."""
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{who}: cannot read {path}: {exc or type(exc).__name__}") from None
    if not isinstance(batch, dict):
        raise InputError(f"{who}: {path} holds a {type(batch).__name__}, not a CIFAR dict")
    return {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}


def _field(batch: dict[bytes, Any], key: str, path: Path, who: str) -> Any:
    if key.encode() not in batch:
        have = ", ".join(sorted(k.decode(errors="replace") for k in batch))
        raise InputError(f"{who}: {path} has no {key!r} entry (has: {have})")
    return batch[key.encode()]


def _images_and_labels(
    path: Path, label_key: str, n_classes: int, who: str
) -> tuple[np.ndarray, np.ndarray]:
    batch = read_batch(path, who)
    data = np.asarray(_field(batch, "data", path, who))
    labels = np.asarray(_field(batch, label_key, path, who))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise InputError(f"{who}: {path} 'data' must be uint8 N x 3072, got {data.dtype} {list(data.shape)}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{who}: {path} needs one integer {label_key!r} per image, got {labels.size}")
    outside = np.unique(labels[(labels < 0) | (labels >= n_classes)])
    if len(outside):
        raise InputError(f"{who}: {path} has labels outside 0..{n_classes - 1}: {outside.tolist()[:10]}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _names(path: Path, key: str, who: str) -> list[str]:
    names = _field(read_batch(path, who), key, path, who)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


@dataclass(frozen=True)
class _Layout:
    name: str
    folder: str
    train: tuple[str, ...]
    test: str
    meta: str
    labels_key: str
    names_key: str
    title: str
    missing: str


CIFAR10 = _Layout(
    "cifar10", CIFAR10_DIR, tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta",
    "labels", "label_names", "CIFAR-10", CIFAR10_MISSING,
)
CIFAR100 = _Layout(
    "cifar100", CIFAR100_DIR, ("train",), "test", "meta",
    "fine_labels", "fine_label_names", "CIFAR-100 (fine labels)", CIFAR100_MISSING,
)


def _load(spec: DatasetSpec, seed: int, layout: _Layout) -> Dataset:
    who = layout.name
    root = check_spec(spec, who)
    assert root is not None
    folder = root if root.name == layout.folder else root / layout.folder
    if not folder.is_dir():
        raise InputError(layout.missing.format(where=folder))
    absent = [f for f in (*layout.train, layout.test, layout.meta) if not (folder / f).is_file()]
    if absent:
        raise InputError(layout.missing.format(where=", ".join(str(folder / f) for f in absent)))
    class_names = _names(folder / layout.meta, layout.names_key, who)
    pairs = [_images_and_labels(folder / f, layout.labels_key, len(class_names), who) for f in layout.train]
    test = _images_and_labels(folder / layout.test, layout.labels_key, len(class_names), who)
    raw = np.concatenate([p[0] for p in pairs] + [test[0]])
    labels = np.concatenate([p[1] for p in pairs] + [test[1]])
    n_train = len(labels) - len(test[1])

    x, scale = preprocess.to_unit_range(raw, who)
    x, conversion = preprocess.convert_channels(x, spec.channels)
    x = preprocess.finish(x, spec)

    share = spec.split.calibration / (spec.split.train + spec.split.calibration)
    pool = stratified_split(labels[:n_train], {"train": 1 - share, "calibration": share}, seed)
    parts = {**pool, "evaluation": np.arange(n_train, len(labels))}
    if len(parts["evaluation"]) == 0:
        raise InputError(f"split 'evaluation' is empty: no sample in {folder / layout.test}")
    parts["train"], under = apply_long_tail(parts["train"], labels, spec.long_tail, class_names, seed)
    split_text = (
        f"evaluation = {layout.test}; calibration = {share:.4g} of the training batches "
        "(stratified, seeded); train = the rest"
    )
    source = {"source_size": [32, 32], "source_channels": 3, "channel_conversion": conversion, "scale": scale}
    return build_dataset(
        who,
        x,
        labels,
        parts,
        class_names,
        under_represented=under,
        preprocessing=preprocess.record(spec, source, x.shape[1], split_text),
        description=f"{layout.title} from {folder} ({n_train} training and {len(test[1])} test images)",
    )


def load_cifar10_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    return _load(spec, seed, CIFAR10)


def load_cifar100_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    return _load(spec, seed, CIFAR100)
