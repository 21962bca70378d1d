"""Pruning and quantization do what they claim, read back from the exported files."""

from __future__ import annotations

import numpy as np
import pytest

from harness.compress.prune import channel_prune, magnitude_prune
from harness.compress.variants import expand_variants
from harness.config import ExperimentSpec, QuantSpec
from harness.errors import ConfigError
from harness.export.inspect import inspect_onnx
from harness.progress import ProgressReporter
from tests.conftest import logits_of

SILENT = ProgressReporter()


def test_magnitude_pruning_is_permanent_and_reaches_the_sparsity_in_the_onnx(tiny_model, tiny_dataset, tmp_path):
    import onnx

    from harness.export.onnx import export_onnx, export_program

    result = magnitude_prune(tiny_model, 0.7, {"finetune_epochs": 1}, tiny_dataset, 0, SILENT, "m")
    assert not any("weight_orig" in n for n, _ in result.model.named_parameters())  # mask folded in
    program = export_program(result.model, tiny_dataset.evaluation.x[:1], tmp_path / "m.pt2")
    export_onnx(program, tiny_dataset.evaluation.x[:1], tmp_path / "m.onnx")
    info = inspect_onnx(tmp_path / "m.onnx")
    assert info.weight_sparsity == pytest.approx(0.7, abs=0.01)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert "Mul" not in ops  # no weight * mask nodes
    assert tiny_model is not result.model  # the baseline is never modified


def test_channel_pruning_cuts_macs_rounds_channels_and_keeps_the_head(tiny_model, tiny_dataset):
    import torch.nn as nn

    result = channel_prune(tiny_model, 0.5, {"finetune_epochs": 0, "round_to": 4}, tiny_dataset, 0, SILENT, "c")
    assert result.macs_after < 0.6 * result.macs_before
    assert result.params_after < result.params_before
    convs = [m for m in result.model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.out_channels % 4 == 0 for c in convs)
    head = [m for m in result.model.modules() if isinstance(m, nn.Linear)][-1]
    assert head.out_features == 10
    assert logits_of(result.model, tiny_dataset.evaluation.x[:5]).shape == (5, 10)


def test_int8_quantization_writes_qdq_and_keeps_predictions(tiny_onnx, tiny_dataset, tmp_path):
    import onnxruntime as ort

    from harness.compress.quantize import quantize_int8_static

    out = tmp_path / "q.onnx"
    settings = quantize_int8_static(tiny_onnx, out, tiny_dataset.calibration.x, QuantSpec(), reduce_range=True)
    assert settings["reduce_range"] is True and settings["format"] == "QDQ"
    info = inspect_onnx(out)
    assert info.precision == "int8" and info.n_quantized_nodes > 0
    assert info.file_mb < inspect_onnx(tiny_onnx).file_mb
    x = tiny_dataset.evaluation.x
    ref = ort.InferenceSession(str(tiny_onnx)).run(None, {"input": x})[0]
    got = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
    assert np.mean(ref.argmax(1) == got.argmax(1)) > 0.9


def test_variant_grid_ids_are_stable_and_quantization_follows_apply_to():
    spec = ExperimentSpec.model_validate(
        {
            "prune": [{"method": "magnitude", "sparsity": [0.5, 0.9]}, {"method": "channel", "ratio": [0.3]}],
            "quantize": [{"apply_to": ["dense", "channel-*"]}],
        }
    )
    variants = expand_variants(spec, "base")
    assert [v.name for v in variants] == [
        "dense", "magnitude-0.5", "magnitude-0.9", "channel-0.3", "dense+int8", "channel-0.3+int8",
    ]
    assert [v.variant_id for v in variants] == [v.variant_id for v in expand_variants(spec, "base")]
    assert variants[0].variant_id != expand_variants(spec, "other-baseline")[0].variant_id
    by_name = {v.name: v for v in variants}
    assert by_name["channel-0.3+int8"].parent_id == by_name["channel-0.3"].variant_id
    assert by_name["channel-0.3+int8"].precision == "int8"


def test_duplicate_variants_are_rejected():
    spec = ExperimentSpec.model_validate({"prune": [{"method": "magnitude", "sparsity": [0.5, 0.5]}]})
    with pytest.raises(ConfigError, match="duplicate variants: magnitude-0.5"):
        expand_variants(spec, "base")
