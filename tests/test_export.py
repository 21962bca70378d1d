"""Export keeps the numbers and the dynamic batch; runners execute the artifacts faithfully."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import InputError
from harness.export.inspect import inspect_program
from harness.export.onnx import OPSET, parity
from harness.runtimes.onnxrt import OnnxRuntimeRunner
from harness.runtimes.torch_ import TorchEagerRunner
from tests.conftest import logits_of


def test_onnx_matches_torch_and_accepts_any_batch(tiny_onnx, tiny_model, tiny_dataset):
    import onnx

    x = tiny_dataset.evaluation.x
    report = parity(tiny_model, tiny_onnx, x[:64])
    assert report.top1_agreement == 1.0 and report.max_abs_diff < 1e-3
    model = onnx.load(str(tiny_onnx))
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {OPSET}
    with OnnxRuntimeRunner(tiny_onnx, threads=1) as runner:
        for batch in (1, 5):
            assert runner.infer(x[:batch]).shape == (batch, 10)


@pytest.mark.parametrize("runner_cls", [OnnxRuntimeRunner, TorchEagerRunner])
def test_each_runner_reproduces_the_torch_logits(runner_cls, tiny_onnx, tiny_model, tiny_dataset):
    artifact = tiny_onnx if runner_cls.artifact_format == "onnx" else tiny_onnx.with_suffix(".pt2")
    x = tiny_dataset.evaluation.x[:32]
    with runner_cls(artifact, threads=1) as runner:
        got = runner.infer(x)
    np.testing.assert_allclose(got, logits_of(tiny_model, x), atol=1e-3)


def test_runner_rejects_a_wrong_input_shape_and_a_missing_artifact(tiny_onnx, tmp_path):
    with OnnxRuntimeRunner(tiny_onnx) as runner:
        runner.set_input_shape((1, 8, 8))
        with pytest.raises(InputError, match=r"input shape \(1, 16, 16\) does not match \(1, 8, 8\)"):
            runner.infer(np.zeros((1, 1, 16, 16), np.float32))
    with pytest.raises(InputError, match="artifact not found"):
        with OnnxRuntimeRunner(tmp_path / "missing.onnx"):
            pass


def test_program_inspection_reads_conv_and_linear_weights(tiny_onnx):
    info = inspect_program(tiny_onnx.with_suffix(".pt2"))
    assert info.format == "torch.export" and info.n_weights > 0
    assert all(name.endswith("weight") for name in info.layer_sparsity)
    assert info.weight_sparsity < 0.01
