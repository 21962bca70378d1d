"""Bad dataset input fails with one clear line naming the culprit; nothing is downloaded or executed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from harness.config import DatasetSpec
from harness.data import DATASETS
from harness.errors import ConfigError, InputError
from harness.experiment import load_experiment
from tests.test_datasets_celeba import write_celeba
from tests.test_datasets_cifar import write_cifar10
from tests.test_datasets_folders import write_imagefolder, write_manifest, write_png
from tests.test_datasets_npz import images, labels, write_npz


def fails(name: str, exc: type[Exception] = InputError, **spec) -> str:
    """Load dataset ``name``, expect ``exc``; return its one-line message."""
    with pytest.raises(exc) as info:
        DATASETS.get(name)(DatasetSpec(**{"name": name, **spec}), 0)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_cifar10_directory_gives_the_layout_and_where_to_get_it(tmp_path):
    assert fails("cifar10", path=str(tmp_path / "x")) == (
        f"cifar10: {tmp_path / 'x' / 'cifar-10-batches-py'} not found; expected data_batch_1..5, test_batch, "
        "batches.meta from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz "
        "(download it yourself: the harness never downloads)"
    )


def test_missing_cifar100_directory_gives_the_layout_and_where_to_get_it(tmp_path):
    message = fails("cifar100", path=str(tmp_path))
    assert "cifar-100-python not found; expected train, test, meta" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in message and "never downloads" in message


def test_a_missing_cifar_batch_is_named(tmp_path):
    folder = write_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    assert fails("cifar10", path=str(tmp_path)).startswith(f"cifar10: {folder / 'data_batch_3'} not found")


def test_missing_celeba_files_give_the_layout_and_where_to_get_it(tmp_path):
    message = fails("celeba", path=str(tmp_path), target="Smiling")
    assert f"{tmp_path / 'list_attr_celeba.txt'} not found" in message
    assert "list_eval_partition.txt and img_align_celeba/" in message and "mmlab.ie.cuhk.edu.hk" in message


@pytest.mark.parametrize("name,expected", [
    ("imagefolder", "expected <path>/<class>/<image>"),
    ("manifest", "expected a CSV file with columns image"),
    ("npz", "expected a .npz file"),
])
def test_missing_user_data_gives_the_expected_layout(tmp_path, name, expected):
    message = fails(name, path=str(tmp_path / "absent"))
    assert f"{tmp_path / 'absent'} not found" in message and expected in message


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "imagefolder", "manifest", "celeba", "npz"])
def test_a_dataset_without_a_path_is_a_config_error_naming_the_key(name):
    assert fails(name, ConfigError).startswith("dataset.path: ")


def test_keys_a_dataset_does_not_use_are_config_errors_naming_the_key(tmp_path):
    assert fails("cifar10", ConfigError, path=str(tmp_path), target="cat").startswith("dataset.target: ")
    assert fails("imagefolder", ConfigError, path=str(tmp_path), group_attributes=["a"]).startswith(
        "dataset.group_attributes: ")
    assert fails("digits", ConfigError, path=str(tmp_path)).startswith("dataset.path: ")


def test_impossible_dataset_keys_in_an_experiment_file_name_the_key(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text('[dataset]\nname = "npz"\nchannels = 2\n')
    with pytest.raises(ConfigError, match=r"dataset\.channels"):
        load_experiment(path)
    path.write_text('[dataset]\nname = "celeba"\ngroup_attributes = ["Male", "Male"]\n')
    with pytest.raises(ConfigError, match=r"dataset\.group_attributes: .*distinct"):
        load_experiment(path)


def test_cifar_labels_outside_the_class_range_are_named(tmp_path):
    folder = write_cifar10(tmp_path)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"labels": [0, 12], b"data": np.zeros((2, 3072), np.uint8)}, f, protocol=2)
    assert fails("cifar10", path=str(tmp_path)) == f"cifar10: {folder / 'test_batch'} has labels outside 0..9: [12]"


def test_npz_labels_outside_the_class_names_are_named(tmp_path):
    path = write_npz(tmp_path / "d.npz", class_names=np.array(["a", "b"]))
    assert fails("npz", path=str(path)) == f"npz: {path} y has labels outside 0..1: [2]"


def test_manifest_negative_labels_are_outside_the_class_range(tmp_path):
    path, _ = write_manifest(tmp_path, labels=[0, 1, -1] * 10)
    assert "labels outside the class range 0..: [-1]" in fails("manifest", path=str(path))


def test_manifest_missing_columns_are_named(tmp_path):
    path, _ = write_manifest(tmp_path)
    message = fails("manifest", path=str(path), group_attributes=["sex", "ethnicity", "income"])
    assert message == f"manifest: {path} lacks columns ethnicity, income (has: image, label, sex, age)"


def test_a_manifest_row_pointing_at_a_missing_image_names_the_file(tmp_path):
    path, _ = write_manifest(tmp_path)
    (tmp_path / "img" / "007.png").unlink()
    assert fails("manifest", path=str(path)) == f"manifest: image {tmp_path / 'img' / '007.png'} not found"


def test_an_unreadable_image_is_named(tmp_path):
    write_imagefolder(tmp_path)
    (tmp_path / "dog" / "005.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert fails("imagefolder", path=str(tmp_path)).startswith(
        f"imagefolder: cannot read image {tmp_path / 'dog' / '005.png'}: ")


def test_a_sixteen_bit_image_is_a_wrong_mode_error_naming_the_file(tmp_path):
    write_imagefolder(tmp_path)
    bad = tmp_path / "emu" / "deep.png"
    Image.fromarray(np.full((10, 12), 40000, np.uint16)).save(bad)
    message = fails("imagefolder", path=str(tmp_path), channels=3)
    assert message.startswith(f"imagefolder: {bad} has image mode 'I;16'") and "convert it to L or RGB" in message


def test_a_grey_image_among_colour_ones_is_named_unless_channels_is_set(tmp_path):
    write_imagefolder(tmp_path)
    write_png(tmp_path / "dog" / "grey.png", 120, mode="L")
    message = fails("imagefolder", path=str(tmp_path))
    assert message.startswith(f"imagefolder: {tmp_path / 'dog' / 'grey.png'} has image mode 'L' but ")
    assert "set dataset.channels = 1 or 3" in message


def test_an_image_of_another_size_is_named_when_image_size_is_unset(tmp_path):
    write_imagefolder(tmp_path)
    write_png(tmp_path / "cat" / "wide.png", 40, size=(20, 10))
    message = fails("imagefolder", path=str(tmp_path), image_size=None)
    assert message.startswith(f"imagefolder: {tmp_path / 'cat' / 'wide.png'} is 20x10 but ")


def test_an_empty_split_is_an_input_error_naming_it(tmp_path):
    path = write_npz(tmp_path / "d.npz", x=images(3), y=labels(3))
    assert fails("npz", path=str(path)) == "split 'train' is empty: the dataset has 3 samples"


def test_an_empty_official_celeba_partition_is_named(tmp_path):
    write_celeba(tmp_path, n=12, partition=[0] * 8 + [2] * 4)
    message = fails("celeba", path=str(tmp_path), target="Smiling")
    partition = tmp_path / "list_eval_partition.txt"
    assert message == f"split 'calibration' is empty: no sample in partition 1 of {partition}"


def test_a_truncated_celeba_attribute_file_is_detected(tmp_path):
    write_celeba(tmp_path)
    attr = tmp_path / "list_attr_celeba.txt"
    attr.write_text("\n".join(attr.read_text().splitlines()[:-5]) + "\n")
    assert "announces 30 images but lists 25 (truncated?)" in fails("celeba", path=str(tmp_path), target="Smiling")


def test_a_celeba_attribute_value_other_than_plus_or_minus_one_is_named(tmp_path):
    write_celeba(tmp_path)
    attr = tmp_path / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0] + " 0"
    attr.write_text("\n".join(lines) + "\n")
    assert "line 5 has '0' for Young; attributes are 1 or -1" in fails("celeba", path=str(tmp_path), target="Male")


def test_a_cifar_pickle_that_would_run_code_is_refused_and_never_executed(tmp_path):
    folder = write_cifar10(tmp_path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": Exploit()}, protocol=2))
    message = fails("cifar10", path=str(tmp_path))
    assert "refused global" in message and "batches.meta" in message
    assert not marker.exists()


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=images(), y=labels(), class_names=np.array([{"a": 1}, None, 3], dtype=object))
    assert fails("npz", path=str(path)).startswith(f"npz: cannot read {path}: ")


def _rewrite_manifest(path, rows) -> None:
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_a_manifest_listing_an_image_twice_names_the_path_and_both_lines(tmp_path):
    path, rows = write_manifest(tmp_path)
    rows[20]["image"] = "./" + rows[4]["image"]  # the same file, spelt another way
    _rewrite_manifest(path, rows)
    message = fails("manifest", path=str(path))
    assert message.startswith(f"manifest: {path} lists image './img/004.png' twice (lines 6 and 22)")


@pytest.mark.parametrize("escape", ["../secret.png", "img/../../secret.png", "ABSOLUTE", "SYMLINK"])
def test_a_manifest_path_outside_its_folder_is_refused_and_never_read(tmp_path, escape):
    data = tmp_path / "data"
    path, rows = write_manifest(data)
    secret = tmp_path / "secret.png"
    write_png(secret, 7)
    if escape == "ABSOLUTE":
        escape = str(secret)
    elif escape == "SYMLINK":
        (data / "img" / "link.png").symlink_to(secret)
        escape = "img/link.png"
    rows[3]["image"] = escape
    _rewrite_manifest(path, rows)
    message = fails("manifest", path=str(path))
    assert message.startswith(f"manifest: {path} line 5 image {escape!r} is outside the manifest's folder")


def test_a_manifest_symlink_inside_its_folder_is_read(tmp_path):
    path, rows = write_manifest(tmp_path)
    (tmp_path / "img" / "000.png").rename(tmp_path / "img" / "real.png")
    (tmp_path / "img" / "link.png").symlink_to("real.png")
    rows[0]["image"] = "img/link.png"
    _rewrite_manifest(path, rows)
    assert len(DATASETS.get("manifest")(DatasetSpec(name="manifest", path=str(path)), 0).train.y) > 0


@pytest.mark.parametrize("bad", ["duplicate", "escape"])
def test_harness_train_refuses_a_bad_manifest_with_one_line_and_exit_code_5(tmp_path, bad):
    import subprocess
    import sys

    path, rows = write_manifest(tmp_path / "data")
    rows[7]["image"] = rows[2]["image"] if bad == "duplicate" else "../outside.png"
    _rewrite_manifest(path, rows)
    proc = subprocess.run([sys.executable, "-m", "harness", "train", "--dataset", "manifest", "--data-path", str(path),
                           "--epochs", "1", "--out", str(tmp_path / "models"), "--results-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 5, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(path) in lines[0] and ("twice (lines 4 and 9)" if bad == "duplicate" else "'../outside.png'") in lines[0]
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
