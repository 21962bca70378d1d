"""Group attributes flow from a dataset through the run: per-group accuracy, worst group, card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import tiny_experiment


def test_a_dataset_with_an_attribute_gets_per_group_accuracy_everywhere(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    ink = digits.images.reshape(len(digits.images), -1).sum(1)
    stroke = (ink > np.median(ink)).astype(np.int64)  # a real attribute of each image: light or heavy stroke
    np.savez(tmp_path / "digits.npz", x=digits.images / 16.0, y=digits.target,
             groups_stroke=stroke, group_levels_stroke=np.array(["light", "heavy"]))
    experiment = tiny_experiment(
        "tiny-groups",
        dataset=f'name = "npz"\npath = "{tmp_path / "digits.npz"}"\nimage_size = 8',
        sections='[[quantize]]\napply_to = ["dense"]\n[selection]\nobjectives = ["p50_ms:min", "worst_group_accuracy:max"]',
        measure='batch_sizes = [1]\nmin_duration_s = 0.1\nisolation = "inline"',
    ).replace("[dataset]\nimage_size = 8\n", "[dataset]\n", 1)
    (tmp_path / "exp.toml").write_text(experiment)
    result = CliRunner().invoke(app, ["run", str(tmp_path / "exp.toml"), "--json", "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output[-3000:]
    doc = json.loads(result.stdout)
    for p in doc["points"]:
        groups = p["per_group_accuracy"]["stroke"]
        assert set(groups) == {"light", "heavy"}
        assert p["worst_group_accuracy"] == min(groups.values())
        assert p["worst_group"] == f"stroke={min(groups, key=groups.get)}"
    card = Path(doc["card_path"]).read_text()
    assert "## Accuracy by group" in card and "| stroke | heavy |" in card
