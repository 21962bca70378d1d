"""CIFAR-10/100 load from their real pickle layout: official test set as evaluation, names from the meta file."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from harness.config import DatasetSpec, LongTailSpec
from harness.data import DATASETS
from harness.data.cifar import load_cifar10_dataset, load_cifar100_dataset

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _dump(path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the distribution's files are Python 2 protocol-2 pickles


def _images(labels: list[int], seed: int) -> np.ndarray:
    """Row-major 3072-byte images (1024 red, 1024 green, 1024 blue), red channel = 10 * label."""
    data = np.random.default_rng(seed).integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    data[:, :1024] = (10 * np.asarray(labels))[:, None]
    return data


def write_cifar10(root, per_class_per_batch: int = 1, n_test_per_class: int = 1):
    """``root/cifar-10-batches-py`` with five training batches, a test batch and batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        labels = list(range(10)) * per_class_per_batch
        _dump(folder / f"data_batch_{i}", {
            b"batch_label": f"training batch {i} of 5".encode(), b"labels": labels,
            b"data": _images(labels, i), b"filenames": [f"img_{i}_{k}.png".encode() for k in range(len(labels))],
        })
    labels = list(range(10)) * n_test_per_class
    _dump(folder / "test_batch", {b"batch_label": b"testing batch 1 of 1", b"labels": labels,
                                  b"data": _images(labels, 9), b"filenames": [b"t.png"] * len(labels)})
    _dump(folder / "batches.meta", {b"label_names": [n.encode() for n in CIFAR10_NAMES],
                                    b"num_cases_per_batch": 10, b"num_vis": 3072})
    return folder


def write_cifar100(root, n_classes_used: int = 4):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    fine = [f"class{c:03d}".encode() for c in range(100)]
    for name, reps in (("train", 6), ("test", 2)):
        labels = list(range(n_classes_used)) * reps
        _dump(folder / name, {b"filenames": [b"x.png"] * len(labels), b"batch_label": name.encode(),
                              b"fine_labels": labels, b"coarse_labels": [c // 5 for c in labels],
                              b"data": _images(labels, len(name))})
    _dump(folder / "meta", {b"fine_label_names": fine, b"coarse_label_names": [b"c"] * 20})
    return folder


def test_cifar10_keeps_the_official_test_batch_as_evaluation_and_splits_the_rest(tmp_path):
    write_cifar10(tmp_path)
    ds = load_cifar10_dataset(DatasetSpec(path=str(tmp_path)), seed=0)
    assert ds.class_names == CIFAR10_NAMES
    assert ds.input_shape == [3, 32, 32] and ds.train.x.dtype == np.float32 and ds.train.y.dtype == np.int64
    assert ds.evaluation.index.tolist() == list(range(50, 60))
    assert (len(ds.train), len(ds.calibration), len(ds.evaluation)) == (40, 10, 10)
    idx = [set(s.index.tolist()) for s in ds.splits()]
    assert not (idx[0] & idx[1]) and not (idx[0] & idx[2]) and not (idx[1] & idx[2])
    assert all(int((ds.calibration.y == c).sum()) == 1 for c in range(10))  # stratified
    assert ds.group_levels == {} and ds.train.groups == {}


def test_cifar10_pixels_are_read_channel_first_scaled_and_normalised(tmp_path):
    write_cifar10(tmp_path)
    ds = load_cifar10_dataset(DatasetSpec(path=str(tmp_path), mean=0.5, std=0.5), seed=0)
    for split in ds.splits():
        red = split.x[:, 0]
        expected = (10 * split.y / 255.0 - 0.5) / 0.5
        assert np.allclose(red, expected[:, None, None], atol=1e-6)
    prep = ds.preprocessing
    assert prep["scale"] == "pixel / 255" and prep["source_size"] == [32, 32] and prep["resize"] == 32
    assert prep["mean"] == 0.5 and prep["std"] == 0.5 and "test_batch" in prep["split"]


def test_cifar10_path_may_name_the_batches_folder_itself(tmp_path):
    folder = write_cifar10(tmp_path)
    a = load_cifar10_dataset(DatasetSpec(path=str(tmp_path)), seed=0)
    b = load_cifar10_dataset(DatasetSpec(path=str(folder)), seed=0)
    assert np.array_equal(a.train.x, b.train.x)


def test_cifar10_split_is_seeded(tmp_path):
    write_cifar10(tmp_path, per_class_per_batch=2)
    a, b, c = (load_cifar10_dataset(DatasetSpec(path=str(tmp_path)), seed=s) for s in (0, 0, 1))
    assert np.array_equal(a.calibration.index, b.calibration.index)
    assert not np.array_equal(a.calibration.index, c.calibration.index)


def test_cifar10_resize_and_grey_conversion_are_applied_and_recorded(tmp_path):
    write_cifar10(tmp_path)
    ds = load_cifar10_dataset(DatasetSpec(path=str(tmp_path), image_size=16, channels=1), seed=0)
    assert ds.input_shape == [1, 16, 16] and ds.train.x.dtype == np.float32
    assert ds.preprocessing["resize"] == 16 and ds.preprocessing["channels"] == 1
    assert ds.preprocessing["channel_conversion"] == "ITU-R 601-2 luma"
    assert ds.preprocessing["source_channels"] == 3


def test_cifar10_long_tail_thins_only_the_named_training_classes(tmp_path):
    write_cifar10(tmp_path, per_class_per_batch=2)
    full = load_cifar10_dataset(DatasetSpec(path=str(tmp_path)), seed=0)
    spec = DatasetSpec(path=str(tmp_path), long_tail=LongTailSpec(classes=[3], keep_fraction=0.25))
    tail = load_cifar10_dataset(spec, seed=0)
    assert int((tail.train.y == 3).sum()) == round(0.25 * int((full.train.y == 3).sum()))
    assert int((tail.train.y == 4).sum()) == int((full.train.y == 4).sum())
    assert np.array_equal(full.calibration.index, tail.calibration.index)
    assert np.array_equal(full.evaluation.index, tail.evaluation.index)
    assert tail.under_represented == ["cat"]


def test_cifar100_uses_fine_labels_and_lists_all_hundred_classes(tmp_path):
    write_cifar100(tmp_path)
    ds = load_cifar100_dataset(DatasetSpec(path=str(tmp_path)), seed=0)
    assert len(ds.class_names) == 100 and ds.class_names[3] == "class003"
    assert set(ds.train.y.tolist()) == {0, 1, 2, 3}
    assert len(ds.evaluation) == 8 and ds.evaluation.index.min() == 24
    info = ds.info()
    assert info.splits[2].per_class_counts["class050"] == 0  # classes without images are kept, counted as 0


def test_cifar_batches_pickled_by_numpy_1_load_without_warnings(tmp_path):
    folder = write_cifar10(tmp_path)
    for path in folder.iterdir():  # the distribution's arrays name numpy.core, not numpy._core
        path.write_bytes(path.read_bytes().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    assert b"cnumpy.core.multiarray\n" in (folder / "test_batch").read_bytes()
    ds = load_cifar10_dataset(DatasetSpec(path=str(tmp_path)), seed=0)  # filterwarnings=error: none raised
    assert len(ds.evaluation) == 10


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "imagefolder", "manifest", "celeba", "npz"])
def test_every_new_loader_is_registered(name):
    assert callable(DATASETS.get(name))
