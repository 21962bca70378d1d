"""The experiment keys of the bias metrics, and a run on a binary target with binary attributes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import ConfigError
from harness.experiment import load_experiment
from tests.conftest import tiny_experiment
from tests.test_config import write


def test_bias_and_groups_sections_default_to_the_reference_cev_and_no_intersection():
    spec = load_experiment(None)
    assert spec.bias.cev_variant == "reference" and spec.groups.intersections == []


@pytest.mark.parametrize(("text", "where"), [
    ('[bias]\ncev_variant = "sum"\n', "bias.cev_variant"),
    ('[groups]\nintersections = [["sex"]]\n', "groups.intersections"),
    ('[groups]\nintersections = [["sex", "sex"]]\n', "groups.intersections"),
    ('[dataset]\nname = "npz"\npath = "x.npz"\ngroup_attributes = ["sex", "age"]\n'
     '[groups]\nintersections = [["sex", "race"]]\n', "'race' is not in dataset.group_attributes"),
    ('[groups]\nmin_support = 0\n', "groups.min_support"),
])
def test_bad_bias_and_group_keys_are_rejected_naming_the_key(tmp_path, text, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        load_experiment(write(tmp_path, text))


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    """Digits as a binary task (odd digit?) with two binary image attributes and their intersection."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("binary")
    digits = load_digits()
    ink = digits.images.reshape(len(digits.images), -1).sum(1)
    stroke = (ink > np.median(ink)).astype(np.int64)
    loop = np.isin(digits.target, [0, 6, 8, 9]).astype(np.int64)  # digits drawn with a closed loop
    np.savez(root / "d.npz", x=digits.images / 16.0, y=digits.target % 2, class_names=np.array(["even", "odd"]),
             groups_stroke=stroke, group_levels_stroke=np.array(["light", "heavy"]),
             groups_loop=loop, group_levels_loop=np.array(["open", "loop"]))
    experiment = tiny_experiment(
        "tiny-binary",
        epochs=4,
        dataset=f'name = "npz"\npath = "{root / "d.npz"}"',
        sections='[[prune]]\nmethod = "magnitude"\nsparsity = [0.9]\nfinetune_epochs = 0\n'
        '[groups]\nintersections = [["stroke", "loop"]]\nmin_support = 150\n'
        '[bias]\ncev_variant = "normalised"\nn_boot = 50\n'
        "[selection]\nmax_top1_drop = 1.0\nmax_worst_class_drop = 1.0",
        measure='batch_sizes = [1]\nmin_duration_s = 0.1\nisolation = "inline"',
    ).replace("[dataset]\nimage_size = 8\n", "[dataset]\n", 1)
    (root / "exp.toml").write_text(experiment)
    result = CliRunner().invoke(app, ["run", str(root / "exp.toml"), "--json", "--results-dir", str(root)])
    assert result.exit_code == 0, result.output[-3000:]
    return root, json.loads(result.stdout)


def test_a_binary_run_stores_amplification_calibration_and_per_group_intervals(binary_run):
    from harness.store import open_store

    root, doc = binary_run
    st = open_store(root / "harness.db")
    points = {p.variant_name: p for p in st.operating_points(doc["run_id"])}
    st.close()
    pruned, dense = points["magnitude-0.9"], points["dense"]
    bias, acc = pruned.bias, pruned.accuracy
    assert bias.cev_variant == "normalised"
    # intersections are groups like any other, deltas with intervals; every level is reported
    assert set(acc.per_group_accuracy) == {"stroke", "loop", "stroke&loop"}
    assert set(acc.per_group_accuracy["stroke&loop"]) == {"light&open", "light&loop", "heavy&open", "heavy&loop"}
    keys = {f"{a}={lv}" for a, levels in acc.per_group_accuracy.items() for lv in levels}
    assert set(bias.per_group_delta_ci) == keys == set(bias.per_group_delta_significant)
    small = {f"{a}={lv}" for a, sup in acc.per_group_support.items() for lv, n in sup.items() if n < 150}
    assert set(acc.small_support_groups) == small and acc.min_group_support == 150
    assert small and all(acc.per_group_accuracy[k.split("=")[0]][k.split("=")[1]] is not None for k in small)
    # amplification over the two binary attributes (not the 4-level intersection), vs the dense model
    assert set(bias.bias_amp_delta_by_attribute) == {"stroke=heavy", "loop=loop"}
    assert bias.bias_amp_a_to_t_delta == pytest.approx(bias.bias_amp_a_to_t - bias.bias_amp_a_to_t_dense)
    assert bias.bias_amp_indicator_split == "train"
    assert dense.bias.bias_amp_a_to_t_delta == 0.0
    # threshold calibration on the calibration split: defined, with the predicted-positive shares
    assert bias.threshold_calibration_unavailable_reason is None
    assert bias.calibrated_threshold is not None and 0 <= bias.calibrated_top1 <= 1
    assert bias.calibrated_worst_group is not None
    assert 0.3 < bias.positive_share_true < 0.7
    assert set(bias.per_group_fnr_delta) == keys  # binary target: per-group FNR change


def test_results_show_prints_the_group_table_and_the_cev_definition(binary_run):
    root, doc = binary_run
    result = CliRunner().invoke(app, ["results", "show", doc["run_id"], "--store", str(root / "harness.db")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "accuracy change by group vs dense" in out and "stroke&loop=heavy&loop" in out
    assert "CEV definition: normalised" in out
    shown = CliRunner().invoke(app, ["results", "show", doc["run_id"], "--json", "--store", str(root / "harness.db")])
    pruned = next(p for p in json.loads(shown.stdout)["points"] if p["variant_name"] == "magnitude-0.9")
    assert pruned["bias_amp_a_to_t_delta"] is not None and pruned["calibrated_top1"] is not None


def test_an_intersection_of_an_unknown_attribute_fails_before_training(tmp_path):
    text = tiny_experiment("bad-inter", sections='[groups]\nintersections = [["stroke", "loop"]]')
    (tmp_path / "exp.toml").write_text(text)
    result = CliRunner().invoke(app, ["run", str(tmp_path / "exp.toml"), "--results-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "groups.intersections: 'stroke' is not a group attribute of digits" in result.output + str(result.exception)
    assert not (tmp_path / "cache" / "models").exists()  # nothing was trained
