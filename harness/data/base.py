"""The in-memory dataset every loader produces, and the split, long-tail and spec helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import ConfigError, InputError
from harness.records import DatasetInfo, SplitInfo

if TYPE_CHECKING:
    from harness.config import DatasetSpec, LongTailSpec

SPLIT_NAMES = ("train", "calibration", "evaluation")


@dataclass(frozen=True)
class Split:
    name: str
    x: np.ndarray  # float32, N x C x H x W, already preprocessed
    y: np.ndarray  # int64, N
    index: np.ndarray  # positions in the source dataset, for audits
    # group attributes: attribute name -> per-sample level index (int64, N), e.g. {"Male": [0, 1, ...]}
    groups: dict[str, np.ndarray] = field(default_factory=dict)

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
    # attribute name -> level names, indexed by the values stored in Split.groups
    group_levels: dict[str, list[str]] = field(default_factory=dict)
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
            group_levels={a: list(levels) for a, levels in self.group_levels.items()},
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
    result = {n: np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64) for n, parts in out.items()}
    for name, idx in result.items():
        if len(idx) == 0:
            raise InputError(f"split {name!r} is empty: the dataset has {len(y)} samples")
    return result


def split_fractions(spec: DatasetSpec) -> dict[str, float]:
    return {"train": spec.split.train, "calibration": spec.split.calibration, "evaluation": spec.split.evaluation}


def check_not_empty(parts: dict[str, np.ndarray], where: dict[str, str]) -> None:
    """An official split with no sample is an error naming where it should have come from."""
    for name in SPLIT_NAMES:
        if len(parts[name]) == 0:
            raise InputError(f"split {name!r} is empty: no sample in {where[name]}")


def apply_long_tail(
    train: np.ndarray, labels: np.ndarray, long_tail: LongTailSpec | None, class_names: list[str], seed: int
) -> tuple[np.ndarray, list[str]]:
    """Keep ``keep_fraction`` (at least one) of the training samples of each long-tail class.

    Returns the new training indices and the under-represented class names. Classes are
    visited in order and only long-tail classes draw from the generator, so a dataset in
    which every class has training samples gets exactly the draws digits always made.
    """
    if long_tail is None:
        return train, []
    bad = [c for c in long_tail.classes if not 0 <= c < len(class_names)]
    if bad:
        raise ConfigError(f"dataset.long_tail.classes: {bad} not in 0..{len(class_names) - 1}")
    rng = np.random.default_rng(seed + 1)
    keep = []
    for cls in range(len(class_names)):
        idx = train[labels[train] == cls]
        if len(idx) and cls in long_tail.classes:
            n = max(1, int(round(long_tail.keep_fraction * len(idx))))
            idx = np.sort(rng.choice(idx, size=n, replace=False))
        keep.append(idx)
    return np.sort(np.concatenate(keep)), [class_names[c] for c in sorted(long_tail.classes)]


def encode_levels(values: np.ndarray | list[Any]) -> tuple[np.ndarray, list[str]]:
    """Per-sample level indices (int64) and the sorted level names of one group attribute."""
    levels, inverse = np.unique(np.asarray(values), return_inverse=True)
    return inverse.astype(np.int64).reshape(-1), [str(v) for v in levels]


def build_dataset(
    name: str,
    x: np.ndarray,
    labels: np.ndarray,
    parts: dict[str, np.ndarray],
    class_names: list[str],
    *,
    groups: dict[str, np.ndarray] | None = None,
    group_levels: dict[str, list[str]] | None = None,
    under_represented: list[str] | None = None,
    preprocessing: dict[str, Any] | None = None,
    description: str = "",
) -> Dataset:
    """Cut ``x``, ``labels`` and every group array along ``parts`` into the three splits."""
    groups = groups or {}

    def split(part: str) -> Split:
        idx = parts[part]
        return Split(part, x[idx], labels[idx], idx, {a: g[idx] for a, g in groups.items()})

    return Dataset(
        name=name,
        class_names=class_names,
        train=split("train"),
        calibration=split("calibration"),
        evaluation=split("evaluation"),
        under_represented=under_represented or [],
        group_levels=group_levels or {},
        preprocessing=preprocessing or {},
        description=description,
    )


def check_spec(
    spec: DatasetSpec, dataset: str, *, path: bool = True, target: bool = False, groups: bool = False
) -> Path | None:
    """Refuse keys ``dataset`` does not use and demand ``path``; returns the path, user-expanded."""
    if not target and spec.target is not None:
        raise ConfigError(f"dataset.target: {dataset} has no target to choose; remove it")
    if not groups and spec.group_attributes:
        raise ConfigError(f"dataset.group_attributes: {dataset} has no group attributes; remove them")
    if not path:
        if spec.path is not None:
            raise ConfigError(f"dataset.path: {dataset} is embedded and reads no path; remove it")
        return None
    if spec.path is None:
        raise ConfigError(f"dataset.path: {dataset} needs a path to its files")
    return Path(spec.path).expanduser()
