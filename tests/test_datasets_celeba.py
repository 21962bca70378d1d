"""CelebA in its real on-disk layout: binary target and groups from the attribute file, official partition."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.config import DatasetSpec, LongTailSpec, SplitSpec
from harness.data.celeba import load_celeba_dataset
from harness.errors import ConfigError

ATTRS = ["5_o_Clock_Shadow", "Eyeglasses", "Male", "Smiling", "Young"]


def attribute_table(n: int) -> np.ndarray:
    """Deterministic +1 / -1 table, ``n`` images x ``ATTRS``, with both values in every column."""
    i = np.arange(n)[:, None]
    return np.where((i * (np.arange(len(ATTRS)) + 2) + i // 3) % 3 == 0, 1, -1)


def write_celeba(root, n: int = 30, partition=None):
    """list_attr_celeba.txt, list_eval_partition.txt and img_align_celeba/ as in the distribution."""
    table = attribute_table(n)
    names = [f"{k + 1:06d}.jpg" for k in range(n)]
    partition = partition if partition is not None else [0] * (n - 12) + [1] * 4 + [2] * 8
    lines = [str(n), " ".join(ATTRS) + " "]  # the real second line ends with a space
    lines += [name + " " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, table, strict=True)]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{name} {p}\n" for name, p in zip(names, partition, strict=True))
    )
    images = root / "img_align_celeba"
    images.mkdir()
    for k, name in enumerate(names):
        Image.new("RGB", (9, 11), (8 * k % 256, 100, 50)).save(images / name, quality=95)
    return table, partition


def spec(root, **kw) -> DatasetSpec:
    return DatasetSpec(**{"path": str(root), "target": "Smiling", "image_size": 8, **kw})


def test_celeba_keeps_the_official_partition_and_ignores_split_fractions(tmp_path):
    _, partition = write_celeba(tmp_path)
    ds = load_celeba_dataset(spec(tmp_path, split=SplitSpec(train=0.3, calibration=0.3, evaluation=0.4)), seed=0)
    p = np.asarray(partition)
    assert ds.train.index.tolist() == np.flatnonzero(p == 0).tolist()
    assert ds.calibration.index.tolist() == np.flatnonzero(p == 1).tolist()
    assert ds.evaluation.index.tolist() == np.flatnonzero(p == 2).tolist()
    assert "official" in ds.preprocessing["split"]


def test_celeba_target_is_a_binary_class_named_after_the_attribute(tmp_path):
    table, _ = write_celeba(tmp_path)
    ds = load_celeba_dataset(spec(tmp_path), seed=0)
    assert ds.class_names == ["not Smiling", "Smiling"]
    smiling = (table[:, ATTRS.index("Smiling")] == 1).astype(np.int64)
    for split in ds.splits():
        assert split.y.dtype == np.int64 and split.y.tolist() == smiling[split.index].tolist()
    assert ds.input_shape == [3, 8, 8] and ds.train.x.dtype == np.float32


def test_celeba_group_attributes_come_from_the_same_file_per_split(tmp_path):
    table, _ = write_celeba(tmp_path)
    ds = load_celeba_dataset(spec(tmp_path, group_attributes=["Male", "Young"]), seed=0)
    assert ds.group_levels == {"Male": ["not Male", "Male"], "Young": ["not Young", "Young"]}
    for split in ds.splits():
        for attr in ("Male", "Young"):
            expected = (table[split.index, ATTRS.index(attr)] == 1).astype(np.int64)
            assert split.groups[attr].tolist() == expected.tolist()


def test_celeba_long_tail_thins_only_the_training_partition(tmp_path):
    write_celeba(tmp_path)
    full = load_celeba_dataset(spec(tmp_path), seed=0)
    tail = load_celeba_dataset(spec(tmp_path, long_tail=LongTailSpec(classes=[1], keep_fraction=0.5)), seed=0)
    n_full = int((full.train.y == 1).sum())
    assert int((tail.train.y == 1).sum()) == max(1, round(0.5 * n_full))
    assert int((tail.train.y == 0).sum()) == int((full.train.y == 0).sum())
    assert np.array_equal(full.calibration.index, tail.calibration.index)
    assert np.array_equal(full.evaluation.index, tail.evaluation.index)
    assert tail.under_represented == ["Smiling"]


def test_celeba_images_are_decoded_in_attribute_file_order(tmp_path):
    write_celeba(tmp_path)
    ds = load_celeba_dataset(spec(tmp_path, image_size=None, mean=0.0, std=1.0), seed=0)
    assert ds.input_shape == [3, 11, 9] and ds.preprocessing["source_size"] == [11, 9]
    for split in ds.splits():
        green = split.x[:, 1].mean(axis=(1, 2))
        assert np.allclose(green, 100 / 255, atol=0.03)  # JPEG is lossy; the channel order is not
        red = split.x[:, 0].mean(axis=(1, 2))
        assert np.allclose(red, (8 * split.index % 256) / 255, atol=0.03)


def test_celeba_without_a_target_is_a_config_error_listing_the_attributes(tmp_path):
    write_celeba(tmp_path)
    with pytest.raises(ConfigError, match=r"^dataset\.target: celeba needs a target attribute, one of 5_o_"):
        load_celeba_dataset(DatasetSpec(path=str(tmp_path)), seed=0)


def test_celeba_unknown_target_is_a_config_error_with_a_suggestion(tmp_path):
    write_celeba(tmp_path)
    expected = r"^dataset\.target: 'Smilling' is not a CelebA attribute; did you mean 'Smiling'"
    with pytest.raises(ConfigError, match=expected):
        load_celeba_dataset(DatasetSpec(path=str(tmp_path), target="Smilling"), seed=0)


def test_celeba_unknown_group_attribute_is_a_config_error_naming_the_key(tmp_path):
    write_celeba(tmp_path)
    with pytest.raises(ConfigError, match=r"^dataset\.group_attributes: 'male' is not a CelebA attribute"):
        load_celeba_dataset(spec(tmp_path, group_attributes=["male"]), seed=0)
