"""The compression recipes flow through the variant grid: ``harness run`` with 2:4 + distillation + fp16 + dynamic int8."""

from __future__ import annotations

import json

EXPERIMENT = """
name = "compress-e2e"
seed = 0
runtimes = ["onnxruntime"]

[dataset]
name = "digits"
image_size = 8
long_tail = { classes = [3, 8], keep_fraction = 0.3 }

[model]
name = "small-cnn"
channels = [8, 8, 16, 16, 16]

[train]
epochs = 3
batch_size = 32
lr = 0.003

[[prune]]
method = "2:4"
distill = true
temperature = 3.0
alpha = 0.7
finetune_epochs = 1

[[quantize]]
precision = "fp16"
apply_to = ["2:4-kd"]

[[quantize]]
method = "dynamic"
apply_to = ["dense", "2:4-kd"]

[measure]
batch_sizes = [1]
profile = "quick"
min_samples = 20
min_duration_s = 0.1
"""


def test_harness_run_builds_measures_and_proves_2_4_kd_fp16_and_dynamic_int8_variants(tmp_path):
    from typer.testing import CliRunner

    from harness.cli import app

    experiment = tmp_path / "e.toml"
    experiment.write_text(EXPERIMENT)
    results = tmp_path / "results"
    result = CliRunner().invoke(app, ["run", str(experiment), "--json", "--inline", "--results-dir", str(results)])
    assert result.exit_code == 0, result.output[-3000:]
    doc = json.loads(result.stdout)
    points = {p["variant_name"]: p for p in doc["points"]}
    assert set(points) == {"dense", "2:4-kd", "2:4-kd+fp16", "dense+int8-dynamic", "2:4-kd+int8-dynamic"}
    assert all(p["status"] == "ok" and p["runtime"] == "onnxruntime" for p in points.values())
    assert {name: p["precision"] for name, p in points.items()} == {
        "dense": "fp32", "2:4-kd": "fp32", "2:4-kd+fp16": "fp16", "dense+int8-dynamic": "int8", "2:4-kd+int8-dynamic": "int8",
    }
    assert points["2:4-kd"]["prune_method"] == "2:4"
    assert 0.45 < points["2:4-kd"]["sparsity"] <= 0.5  # measured in the file; the 1-channel stem stays dense
    assert points["2:4-kd"]["top1"] > 0.5  # ten classes: far above chance
    assert abs(points["2:4-kd+fp16"]["top1"] - points["2:4-kd"]["top1"]) < 0.02

    details = {d["variant"]: d for d in map(json.loads, map(lambda p: p.read_text(), results.glob("cache/artifacts/*/details.json")))}
    pruned = details["2:4-kd"]
    assert pruned["pruning"]["distilled"] is True and pruned["two_four"]["layers_not_eligible"]
    for name in ("2:4-kd", "2:4-kd+fp16", "2:4-kd+int8-dynamic"):  # every file of the family is proven 2:4
        inspection = details[name]["inspection"]
        assert inspection["n_two_four_layers"] == inspection["n_two_four_eligible"] == 5
    assert details["2:4-kd+fp16"]["inspection"]["precision"] == "fp16"
    assert details["dense+int8-dynamic"]["quantization"]["quantizer"].endswith("quantize_dynamic")
    assert details["dense"]["inspection"]["n_two_four_layers"] == 0
