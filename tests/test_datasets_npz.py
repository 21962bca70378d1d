"""NumPy .npz arrays: every image layout, class names and group arrays carried through, absent classes kept."""

from __future__ import annotations

import numpy as np
import pytest

from harness.config import DatasetSpec, LongTailSpec
from harness.data.npz import load_npz_dataset

N = 36


def images(n: int = N) -> np.ndarray:
    """``n`` grey 6x6 uint8 images, image ``i`` filled with ``7 * i``."""
    return np.broadcast_to((7 * np.arange(n, dtype=np.uint8))[:, None, None], (n, 6, 6)).copy()


def labels(n: int = N) -> np.ndarray:
    return np.arange(n) % 3


def write_npz(path, **arrays):
    arrays.setdefault("x", images())
    arrays.setdefault("y", labels())
    np.savez(path, **arrays)
    return path


def load(path, **kw):
    return load_npz_dataset(DatasetSpec(**{"path": str(path), "image_size": None, **kw}), seed=0)


@pytest.mark.parametrize(
    "layout",
    [
        lambda g: g,  # N, H, W
        lambda g: g[:, None],  # N, C, H, W
        lambda g: g[..., None],  # N, H, W, C
    ],
    ids=["NHW", "NCHW", "NHWC"],
)
def test_npz_grey_layouts_all_load_as_n_c_h_w(tmp_path, layout):
    ds = load(write_npz(tmp_path / "d.npz", x=layout(images())), mean=0.0, std=1.0)
    assert ds.input_shape == [1, 6, 6] and ds.train.x.dtype == np.float32
    for split in ds.splits():
        assert np.allclose(split.x[:, 0, 0, 0], 7 * split.index / 255, atol=1e-6)


def test_npz_colour_channels_last_are_moved_first(tmp_path):
    rgb = np.stack([images(), np.zeros((N, 6, 6), np.uint8), np.full((N, 6, 6), 255, np.uint8)], axis=-1)
    ds = load(write_npz(tmp_path / "d.npz", x=rgb), mean=0.0, std=1.0)
    assert ds.input_shape == [3, 6, 6] and ds.preprocessing["source_layout"] == "NHWC"
    assert np.allclose(ds.train.x[:, 1], 0) and np.allclose(ds.train.x[:, 2], 1)


def test_npz_class_names_are_taken_from_the_file(tmp_path):
    ds = load(write_npz(tmp_path / "d.npz", class_names=np.array(["ant", "bee", "cow"])))
    assert ds.class_names == ["ant", "bee", "cow"]


def test_npz_without_class_names_numbers_classes_up_to_the_largest_label(tmp_path):
    ds = load(write_npz(tmp_path / "d.npz"))
    assert ds.class_names == ["0", "1", "2"]


def test_npz_group_arrays_become_levels_and_follow_each_split(tmp_path):
    sex = np.array(["F", "M", "M"] * 12)
    site = np.arange(N) % 2
    path = write_npz(tmp_path / "d.npz", groups_sex=sex, groups_site=site,
                     group_levels_site=np.array(["north", "south"]))
    ds = load(path)
    assert ds.group_levels == {"sex": ["F", "M"], "site": ["north", "south"]}
    for split in ds.splits():
        assert [ds.group_levels["sex"][v] for v in split.groups["sex"]] == sex[split.index].tolist()
        assert split.groups["site"].dtype == np.int64
        assert split.groups["site"].tolist() == site[split.index].tolist()


def test_npz_group_attributes_select_which_group_arrays_are_kept(tmp_path):
    path = write_npz(tmp_path / "d.npz", groups_a=np.zeros(N, int), groups_b=np.arange(N) % 4)
    ds = load(path, group_attributes=["b"])
    assert ds.group_levels == {"b": ["0", "1", "2", "3"]} and set(ds.train.groups) == {"b"}


def test_npz_float_pixels_in_unit_range_are_not_rescaled(tmp_path):
    x = images().astype(np.float32) / 255
    ds = load(write_npz(tmp_path / "d.npz", x=x), mean=0.0, std=1.0)
    assert ds.preprocessing["scale"] == "none (float input in [0, 1])"
    assert np.allclose(ds.evaluation.x[:, 0, 0, 0], 7 * ds.evaluation.index / 255, atol=1e-6)


def test_npz_resize_and_colour_conversion_are_applied_and_recorded(tmp_path):
    ds = load(write_npz(tmp_path / "d.npz"), image_size=4, channels=3)
    assert ds.input_shape == [3, 4, 4]
    prep = ds.preprocessing
    assert prep["resize"] == 4 and prep["source_size"] == [6, 6] and prep["source_channels"] == 1
    assert prep["channel_conversion"] == "grey replicated to 3 channels" and prep["channels"] == 3


def test_a_class_absent_from_evaluation_is_kept_and_counted_as_zero(tmp_path):
    y = labels()
    y[0] = 3  # class "rare" has a single image: it lands in calibration, not evaluation
    path = write_npz(tmp_path / "d.npz", y=y, class_names=np.array(["a", "b", "c", "rare"]))
    ds = load(path)
    assert ds.class_names == ["a", "b", "c", "rare"] and ds.n_classes == 4
    assert 3 not in ds.evaluation.y
    assert ds.info().splits[2].per_class_counts["rare"] == 0


def test_npz_splits_are_disjoint_seeded_and_long_tail_touches_only_train(tmp_path):
    path = write_npz(tmp_path / "d.npz", x=images(60), y=labels(60))
    full = load(path)
    idx = [set(s.index.tolist()) for s in full.splits()]
    assert not (idx[0] & idx[1]) and not (idx[0] & idx[2]) and not (idx[1] & idx[2])
    assert set().union(*idx) == set(range(60))
    tail = load(path, long_tail=LongTailSpec(classes=[0], keep_fraction=0.2))
    assert int((tail.train.y == 0).sum()) == 2 and int((tail.train.y == 1).sum()) == 10
    assert np.array_equal(full.calibration.index, tail.calibration.index)
    assert np.array_equal(full.evaluation.index, tail.evaluation.index)
    other = load_npz_dataset(DatasetSpec(path=str(path), image_size=None), seed=1)
    assert not np.array_equal(full.evaluation.index, other.evaluation.index)
