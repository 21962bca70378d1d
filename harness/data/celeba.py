"""CelebA (aligned and cropped faces) with a binary target attribute and binary group attributes.

Layout under ``dataset.path``: ``list_attr_celeba.txt`` (first line the image count,
second line the 40 attribute names, then ``<image> 1 -1 ...`` rows), ``list_eval_partition.txt``
(``<image> 0|1|2`` rows) and ``img_align_celeba/``. The official partition is kept: train
-> train, valid -> calibration, test -> evaluation (``dataset.split`` is not used); the
long tail still thins the training split. Class ``i`` and group level ``i`` of an attribute
``A`` are ``["not A", "A"]``: -1 in the file is 0, 1 is 1.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from harness.config import DatasetSpec
from harness.data import preprocess
from harness.data.base import Dataset, apply_long_tail, build_dataset, check_not_empty, check_spec
from harness.errors import ConfigError, InputError

ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_DIR = "img_align_celeba"
CELEBA_MISSING = (
    "celeba: {where} not found; expected {attr}, {part} and {images}/ in {root}, from "
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Img/img_align_celeba.zip, Anno/{attr}, "
    "Eval/{part}; download it yourself: the harness never downloads)"
)
PARTITIONS = {"0": "train", "1": "calibration", "2": "evaluation"}
OFFICIAL = "official list_eval_partition.txt: train, valid -> calibration, test -> evaluation"


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"celeba: cannot read {path}: {exc}") from None


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Image names, attribute names and the ``images x attributes`` matrix of 0 / 1."""
    lines = _lines(path)
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise InputError(f"celeba: {path} must start with the image count, then the attribute names")
    count, names = int(lines[0]), lines[1].split()
    rows = [line.split() for line in lines[2:]]
    if count != len(rows):
        raise InputError(f"celeba: {path} announces {count} images but lists {len(rows)} (truncated?)")
    if not rows:
        raise InputError(f"celeba: {path} lists no images")
    for n, row in enumerate(rows, start=3):
        if len(row) != len(names) + 1:
            raise InputError(f"celeba: {path} line {n} has {len(row) - 1} values for {len(names)} attributes")
    values = np.array([row[1:] for row in rows])
    bad = ~np.isin(values, ["1", "-1"])
    if bad.any():
        row, col = np.argwhere(bad)[0]
        value = str(values[row, col])
        raise InputError(f"celeba: {path} line {row + 3} has {value!r} for {names[col]}; attributes are 1 or -1")
    return [row[0] for row in rows], names, (values == "1").astype(np.int64)


def _check_names(spec: DatasetSpec, names: list[str]) -> None:
    if spec.target is None:
        raise ConfigError(f"dataset.target: celeba needs a target attribute, one of {', '.join(names)}")
    for key, wanted in (("target", [spec.target]), ("group_attributes", spec.group_attributes)):
        for name in wanted:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(
                    f"dataset.{key}: {name!r} is not a CelebA attribute; {hint}known: {', '.join(names)}"
                )


def _partition(path: Path, images: list[str]) -> np.ndarray:
    split_of: dict[str, str] = {}
    for n, line in enumerate(_lines(path), start=1):
        parts = line.split()
        if len(parts) != 2 or parts[1] not in PARTITIONS:
            raise InputError(f"celeba: {path} line {n} must be '<image> 0|1|2', got {line.strip()!r}")
        split_of[parts[0]] = parts[1]
    absent = [i for i in images if i not in split_of]
    if absent:
        raise InputError(f"celeba: {path} gives no partition for {len(absent)} images, e.g. {absent[0]}")
    return np.array([int(split_of[i]) for i in images])


def load_celeba_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    root = check_spec(spec, "celeba", target=True, groups=True)
    assert root is not None
    for needed in (ATTR_FILE, PARTITION_FILE, IMAGE_DIR):
        if not (root / needed).exists():
            raise InputError(
                CELEBA_MISSING.format(
                    where=root / needed, attr=ATTR_FILE, part=PARTITION_FILE, images=IMAGE_DIR, root=root
                )
            )
    images, names, values = read_attributes(root / ATTR_FILE)
    _check_names(spec, names)
    assert spec.target is not None
    partition = _partition(root / PARTITION_FILE, images)
    parts = {name: np.flatnonzero(partition == int(code)) for code, name in PARTITIONS.items()}
    check_not_empty(parts, {n: f"partition {c} of {root / PARTITION_FILE}" for c, n in PARTITIONS.items()})

    labels = values[:, names.index(spec.target)]
    class_names = [f"not {spec.target}", spec.target]
    groups = {a: values[:, names.index(a)] for a in spec.group_attributes}
    levels = {a: [f"not {a}", a] for a in spec.group_attributes}
    x, source = preprocess.load_image_files([root / IMAGE_DIR / i for i in images], spec, "celeba")
    parts["train"], under = apply_long_tail(parts["train"], labels, spec.long_tail, class_names, seed)
    return build_dataset(
        "celeba",
        x,
        labels,
        parts,
        class_names,
        groups=groups,
        group_levels=levels,
        under_represented=under,
        preprocessing=preprocess.record(spec, source, x.shape[1], OFFICIAL),
        description=f"CelebA from {root}: target {spec.target} ({len(labels)} images)",
    )
