"""`harness train`: checkpoints and sidecars for K seeds, shared cache with `harness run`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import tiny_experiment


def test_train_writes_a_checkpoint_and_sidecar_per_seed_that_run_can_load(tmp_path):
    import torch

    from harness.experiment import load_experiment
    from harness.models.baseline import load_baseline
    from harness.progress import ProgressReporter

    exp = tmp_path / "exp.toml"
    exp.write_text(tiny_experiment("train", epochs=1))
    args = ["train", str(exp), "--seeds", "2", "--seed", "3", "--out", str(tmp_path / "models"),
            "--results-dir", str(tmp_path), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output[-3000:]
    trained = json.loads(result.stdout)
    assert [t["seed"] for t in trained] == [3, 4] and not any(t["from_cache"] for t in trained)
    for t in trained:
        side = json.loads(Path(t["sidecar"]).read_text())
        assert side["architecture"] == "small-cnn" and side["seed"] == t["seed"]
        assert side["classes"] == [str(c) for c in range(10)] and side["dataset"]["name"] == "digits"
        assert 0.1 < side["accuracy"]["top1"] == t["top1"] <= 1 and side["accuracy"]["split"] == "evaluation"
    assert trained[0]["top1"] != trained[1]["top1"] or trained[0]["worst_class_recall"] != trained[1]["worst_class_recall"]

    spec = load_experiment(exp, {"seed": 3, "model": {"checkpoint": trained[0]["checkpoint"]}})
    from harness.data import DATASETS

    dataset = DATASETS.get("digits")(spec.dataset, 3)
    loaded = load_baseline(spec.model, spec.train, dataset, "k", 3, tmp_path / "unused", ProgressReporter())
    saved = torch.load(trained[0]["checkpoint"], weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in loaded.model.state_dict().items())

    again = CliRunner().invoke(app, args)  # the baseline cache is `harness run`'s: nothing is retrained
    assert all(t["from_cache"] for t in json.loads(again.stdout))


def test_train_refuses_a_model_whose_weights_come_from_a_file(tmp_path):
    from harness.errors import ConfigError

    result = CliRunner().invoke(app, ["train", "--model", str(tmp_path / "m.onnx"), "--results-dir", str(tmp_path)])
    assert isinstance(result.exception, ConfigError) and "nothing to train" in str(result.exception)
    assert ConfigError.exit_code == 2
