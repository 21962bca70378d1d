"""ImageFolder trees and CSV manifests: PNG files decoded, classes and group attributes carried through."""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image

from harness.config import DatasetSpec, LongTailSpec
from harness.data.folders import load_imagefolder_dataset, load_manifest_dataset

SHADES = {"cat": 40, "dog": 120, "emu": 200}


def write_png(path, value: int, size=(12, 10), mode: str = "RGB") -> None:
    """A solid image of ``size`` (width, height); every channel holds ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fill = value if mode == "L" else (value,) * len(mode)
    Image.new(mode, size, fill).save(path)


def write_imagefolder(root, per_class: int = 10, size=(12, 10)):
    for name, shade in SHADES.items():
        for i in range(per_class):
            write_png(root / name / f"{i:03d}.png", shade, size)
    (root / "cat" / "notes.txt").write_text("not an image, ignored")
    return root


def write_manifest(root, n: int = 30, label_column: str = "label", labels=None):
    """``root/faces.csv`` over ``root/img/*.png`` with two group columns: sex and age."""
    rows = []
    for i in range(n):
        label = labels[i] if labels is not None else ["benign", "malignant"][i % 2]
        write_png(root / "img" / f"{i:03d}.png", 10 * i % 256)
        rows.append({"image": f"img/{i:03d}.png", label_column: label,
                     "sex": ["F", "M"][i % 3 == 0], "age": ["old", "young", "mid"][i % 3]})
    path = root / "faces.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["image", label_column, "sex", "age"])
        writer.writeheader()
        writer.writerows(rows)
    return path, rows


def test_imagefolder_classes_are_the_sorted_folder_names_and_images_are_decoded(tmp_path):
    write_imagefolder(tmp_path)
    ds = load_imagefolder_dataset(DatasetSpec(path=str(tmp_path), image_size=8), seed=0)
    assert ds.class_names == ["cat", "dog", "emu"]
    assert ds.input_shape == [3, 8, 8] and ds.train.x.dtype == np.float32
    for split in ds.splits():
        for x, y in zip(split.x, split.y, strict=True):
            shade = SHADES[ds.class_names[y]]
            assert np.allclose(x, (shade / 255 - 0.5) / 0.5, atol=1e-5)


def test_imagefolder_splits_are_disjoint_stratified_and_cover_every_image(tmp_path):
    write_imagefolder(tmp_path)
    ds = load_imagefolder_dataset(DatasetSpec(path=str(tmp_path), image_size=8), seed=0)
    idx = [set(s.index.tolist()) for s in ds.splits()]
    assert not (idx[0] & idx[1]) and not (idx[0] & idx[2]) and not (idx[1] & idx[2])
    assert set().union(*idx) == set(range(30))
    counts = {s.name: s.per_class_counts for s in ds.info().splits}
    assert counts["train"] == {"cat": 5, "dog": 5, "emu": 5}
    assert counts["calibration"] == {"cat": 1, "dog": 1, "emu": 1}


def test_imagefolder_preprocessing_is_recorded_with_source_size_and_split(tmp_path):
    write_imagefolder(tmp_path, size=(12, 10))
    ds = load_imagefolder_dataset(DatasetSpec(path=str(tmp_path), image_size=8, mean=0.4, std=0.2), seed=0)
    prep = ds.preprocessing
    assert prep["source_size"] == [10, 12] and prep["source_modes"] == ["RGB"]
    assert prep["resize"] == 8 and prep["resize_mode"] == "bilinear" and prep["scale"] == "pixel / 255"
    assert prep["mean"] == 0.4 and prep["std"] == 0.2 and "stratified" in prep["split"]
    assert prep["channel_conversion"] is None


def test_imagefolder_native_size_is_kept_when_image_size_is_unset(tmp_path):
    write_imagefolder(tmp_path, size=(12, 10))
    ds = load_imagefolder_dataset(DatasetSpec(path=str(tmp_path), image_size=None), seed=0)
    assert ds.input_shape == [3, 10, 12]


def test_imagefolder_channels_setting_converts_colour_to_grey(tmp_path):
    write_imagefolder(tmp_path)
    ds = load_imagefolder_dataset(DatasetSpec(path=str(tmp_path), image_size=8, channels=1), seed=0)
    assert ds.input_shape == [1, 8, 8] and ds.preprocessing["channel_conversion"] == "PIL Image.convert('L')"


def test_imagefolder_mixed_sizes_and_modes_are_unified_when_size_and_channels_are_set(tmp_path):
    write_imagefolder(tmp_path)
    write_png(tmp_path / "dog" / "big.png", 120, size=(20, 16), mode="L")
    ds = load_imagefolder_dataset(DatasetSpec(path=str(tmp_path), image_size=8, channels=3), seed=0)
    assert ds.input_shape == [3, 8, 8] and ds.preprocessing["source_size"] == "mixed"
    assert ds.preprocessing["source_modes"] == ["L", "RGB"]


def test_imagefolder_long_tail_thins_only_training(tmp_path):
    write_imagefolder(tmp_path)
    spec = DatasetSpec(path=str(tmp_path), image_size=8, long_tail=LongTailSpec(classes=[1], keep_fraction=0.4))
    full = load_imagefolder_dataset(DatasetSpec(path=str(tmp_path), image_size=8), seed=0)
    tail = load_imagefolder_dataset(spec, seed=0)
    assert int((tail.train.y == 1).sum()) == 2 and int((tail.train.y == 0).sum()) == 5
    assert np.array_equal(full.evaluation.index, tail.evaluation.index)
    assert tail.under_represented == ["dog"]


def test_manifest_group_columns_become_levels_and_per_split_arrays_follow_the_rows(tmp_path):
    path, rows = write_manifest(tmp_path)
    spec = DatasetSpec(path=str(path), image_size=8, group_attributes=["sex", "age"])
    ds = load_manifest_dataset(spec, seed=0)
    assert ds.class_names == ["benign", "malignant"]
    assert ds.group_levels == {"sex": ["F", "M"], "age": ["mid", "old", "young"]}
    assert ds.info().group_levels == ds.group_levels  # group names reach the stored DatasetInfo and the card
    for split in ds.splits():
        assert set(split.groups) == {"sex", "age"}
        for attr in ("sex", "age"):
            assert split.groups[attr].dtype == np.int64 and len(split.groups[attr]) == len(split)
            names = [ds.group_levels[attr][v] for v in split.groups[attr]]
            assert names == [rows[i][attr] for i in split.index]
        assert [ds.class_names[v] for v in split.y] == [rows[i]["label"] for i in split.index]


def test_manifest_images_are_read_relative_to_the_csv_folder(tmp_path):
    path, rows = write_manifest(tmp_path)
    ds = load_manifest_dataset(DatasetSpec(path=str(path), image_size=None, mean=0.0, std=1.0), seed=0)
    for split in ds.splits():
        for x, i in zip(split.x, split.index, strict=True):
            assert np.allclose(x, (10 * int(i) % 256) / 255, atol=1e-6)
    assert ds.input_shape == [3, 10, 12] and ds.group_levels == {}


def test_manifest_label_column_is_chosen_by_target_and_integer_labels_index_classes(tmp_path):
    labels = [0, 2] * 15  # class 1 never appears and is still listed
    path, _ = write_manifest(tmp_path, label_column="diagnosis", labels=labels)
    ds = load_manifest_dataset(DatasetSpec(path=str(path), image_size=8, target="diagnosis"), seed=0)
    assert ds.class_names == ["0", "1", "2"]
    assert ds.info().splits[2].per_class_counts["1"] == 0
    assert set(np.concatenate([s.y for s in ds.splits()]).tolist()) == {0, 2}
