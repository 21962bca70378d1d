"""The in-memory dataset every loader produces, and the split helper they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.errors import InputError
from harness.records import DatasetInfo, SplitInfo


@dataclass(frozen=True)
class Split:
    name: str
    x: np.ndarray  # float32, N x C x H x W, already preprocessed
    y: np.ndarray  # int64, N
    index: np.ndarray  # positions in the source dataset, for audits

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    name: str
    class_names: list[str]
    train: Split
    calibration: Split
    evaluation: Split
    under_represented: list[str] = field(default_factory=list)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> list[int]:
        return list(self.train.x.shape[1:])

    def splits(self) -> list[Split]:
        return [self.train, self.calibration, self.evaluation]

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            name=self.name,
            class_names=list(self.class_names),
            input_shape=self.input_shape,
            splits=[
                SplitInfo(
                    s.name,
                    len(s),
                    {c: int((s.y == i).sum()) for i, c in enumerate(self.class_names)},
                )
                for s in self.splits()
            ],
            under_represented=list(self.under_represented),
            preprocessing=dict(self.preprocessing),
            description=self.description,
        )


def stratified_split(
    y: np.ndarray, fractions: dict[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Disjoint, seeded, per-class proportional index sets covering every sample once."""
    rng = np.random.default_rng(seed)
    names = list(fractions)
    out: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        bounds = np.cumsum([fractions[n] for n in names])[:-1]
        cuts = np.round(bounds * len(idx)).astype(int)
        for name, part in zip(names, np.split(idx, cuts), strict=True):
            out[name].append(part)
    result = {n: np.sort(np.concatenate(parts)) for n, parts in out.items()}
    for name, idx in result.items():
        if len(idx) == 0:
            raise InputError(f"split {name!r} is empty: the dataset has {len(y)} samples")
    return result
