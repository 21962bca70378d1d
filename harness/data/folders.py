"""Image files on disk: an ImageFolder tree, or a CSV manifest with group attribute columns.

ImageFolder: ``<path>/<class>/<image>``, one folder per class, classes in sorted order
(as torchvision's ``ImageFolder``), images in sorted order. Manifest: a CSV whose
``image`` (or ``path``) column holds image paths relative to the CSV's folder (a path
outside it, absolute, through ``..`` or a symlink, is refused, as is an image listed twice), whose
label column is ``dataset.target`` (default ``label``), and whose columns named in
``dataset.group_attributes`` become group attributes (levels in sorted order). Integer
labels are class indices (class names ``"0"`` up to the largest); any other labels are
class names, sorted. Both are split with the seeded, stratified ``dataset.split`` fractions.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from harness.config import DatasetSpec
from harness.data import preprocess
from harness.data.base import (
    Dataset,
    apply_long_tail,
    build_dataset,
    check_spec,
    encode_levels,
    split_fractions,
    stratified_split,
)
from harness.errors import ConfigError, InputError

STRATIFIED = "stratified, seeded dataset.split fractions"
IMAGEFOLDER_MISSING = (
    "imagefolder: {where} not found; expected <path>/<class>/<image>, one folder per class holding "
    "images ({exts})"
)
MANIFEST_MISSING = (
    "manifest: {where} not found; expected a CSV file with columns image (or path, relative to the "
    "CSV's folder), {label} and the group attribute columns"
)
IMAGE_COLUMNS = ("image", "path")


def _is_image(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in preprocess.IMAGE_EXTENSIONS


def load_imagefolder_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    root = check_spec(spec, "imagefolder")
    assert root is not None
    exts = ", ".join(preprocess.IMAGE_EXTENSIONS)
    if not root.is_dir():
        raise InputError(IMAGEFOLDER_MISSING.format(where=root, exts=exts))
    class_names = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_names:
        raise InputError(IMAGEFOLDER_MISSING.format(where=f"any class folder in {root}", exts=exts))
    paths: list[Path] = []
    labels: list[int] = []
    for cls, name in enumerate(class_names):
        files = sorted(p for p in (root / name).iterdir() if _is_image(p))
        if not files:
            raise InputError(f"imagefolder: class folder {root / name} holds no images ({exts})")
        paths += files
        labels += [cls] * len(files)
    x, source = preprocess.load_image_files(paths, spec, "imagefolder")
    y = np.asarray(labels, dtype=np.int64)
    parts = stratified_split(y, split_fractions(spec), seed)
    parts["train"], under = apply_long_tail(parts["train"], y, spec.long_tail, class_names, seed)
    return build_dataset(
        "imagefolder",
        x,
        y,
        parts,
        class_names,
        under_represented=under,
        preprocessing=preprocess.record(spec, source, x.shape[1], STRATIFIED),
        description=f"ImageFolder tree {root} ({len(y)} images, {len(class_names)} classes)",
    )


def _read_manifest(path: Path, label_column: str, group_columns: list[str]) -> tuple[str, list[dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [c.strip() for c in reader.fieldnames or []]
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"manifest: cannot read {path}: {exc}") from None
    image_column = next((c for c in IMAGE_COLUMNS if c in header), None)
    missing = [] if image_column else ["image (or path)"]
    missing += [c for c in (label_column, *group_columns) if c not in header]
    if missing:
        raise InputError(f"manifest: {path} lacks columns {', '.join(missing)} (has: {', '.join(header)})")
    assert image_column is not None  # otherwise missing names it
    if not rows:
        raise InputError(f"manifest: {path} has a header but no rows")
    for line, row in enumerate(rows, start=2):
        empty = [c for c in (image_column, label_column, *group_columns) if not row.get(c)]
        if empty:
            raise InputError(f"manifest: {path} line {line} has no value in column {', '.join(empty)}")
    return image_column, rows


def _image_paths(path: Path, column: str, rows: list[dict[str, str]]) -> list[Path]:
    """Each row's image under the CSV's folder; a path escaping it, or one listed twice, is refused."""
    folder = path.parent.resolve()
    resolved: list[Path] = []
    first_line: dict[Path, int] = {}
    for line, row in enumerate(rows, start=2):
        value = row[column]
        target = (folder / value).resolve()  # follows symlinks, so one pointing outside is caught too
        if Path(value).is_absolute() or not target.is_relative_to(folder):
            raise InputError(f"manifest: {path} line {line} image {value!r} is outside the manifest's folder "
                             f"{folder}; paths are relative to it")
        if target in first_line:
            raise InputError(f"manifest: {path} lists image {value!r} twice (lines {first_line[target]} and "
                             f"{line}); a duplicate row could put one image in both training and evaluation")
        first_line[target] = line
        resolved.append(path.parent / value)
    return resolved


def _class_indices(values: list[str], path: Path, column: str) -> tuple[np.ndarray, list[str]]:
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        return encode_levels(values)
    y = np.asarray(numbers, dtype=np.int64)
    if y.min() < 0:
        bad = sorted({v for v in numbers if v < 0})
        raise InputError(f"manifest: {path} column {column!r} has labels outside the class range 0..: {bad[:10]}")
    return y, [str(c) for c in range(int(y.max()) + 1)]


def load_manifest_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    path = check_spec(spec, "manifest", target=True, groups=True)
    assert path is not None
    label_column = spec.target or "label"
    if path.is_dir():
        raise ConfigError(f"dataset.path: manifest expects the CSV file, got the folder {path}")
    if not path.is_file():
        raise InputError(MANIFEST_MISSING.format(where=path, label=label_column))
    image_column, rows = _read_manifest(path, label_column, spec.group_attributes)
    y, class_names = _class_indices([r[label_column] for r in rows], path, label_column)
    groups: dict[str, np.ndarray] = {}
    levels: dict[str, list[str]] = {}
    for attr in spec.group_attributes:
        groups[attr], levels[attr] = encode_levels([r[attr] for r in rows])
    x, source = preprocess.load_image_files(_image_paths(path, image_column, rows), spec, "manifest")
    parts = stratified_split(y, split_fractions(spec), seed)
    parts["train"], under = apply_long_tail(parts["train"], y, spec.long_tail, class_names, seed)
    return build_dataset(
        "manifest",
        x,
        y,
        parts,
        class_names,
        groups=groups,
        group_levels=levels,
        under_represented=under,
        preprocessing=preprocess.record(spec, source, x.shape[1], STRATIFIED),
        description=f"CSV manifest {path} ({len(y)} images, {len(class_names)} classes)",
    )
