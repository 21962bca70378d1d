"""Quantization recipes: CPU int8 that fuses, dynamic int8, fp16, the TensorRT placement, and bad input."""

from __future__ import annotations

import collections
import re

import numpy as np
import pytest

from harness.compress.half import convert_fp16
from harness.compress.quantize import (
    check_finite,
    is_x86,
    quantize_int8_dynamic,
    quantize_int8_static,
)
from harness.compress.trt_qdq import quantize_int8_tensorrt
from harness.config import QuantSpec
from harness.errors import InputError
from harness.export.inspect import inspect_onnx, onnx_weights


def _run(path, x):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def _optimized_ops(path, tmp_path) -> collections.Counter:
    """Op types of the graph onnxruntime really executes (ORT_ENABLE_ALL, as the runner uses)."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)


@pytest.fixture(scope="module")
def tiny_resnet(tmp_path_factory):
    """A ResNet-18 layout with tiny widths (residual adds, downsampling shortcuts) on 8x8 inputs."""
    import torch

    from harness.export.onnx import export_onnx, export_program
    from harness.models.zoo import resnet18

    torch.manual_seed(0)
    model = resnet18(1, 10, channels=[8, 8, 16, 16]).eval()
    x = np.random.default_rng(0).standard_normal((40, 1, 8, 8)).astype(np.float32)
    out = tmp_path_factory.mktemp("resnet")
    export_onnx(export_program(model, x[:1], out / "r.pt2"), x[:1], out / "r.onnx")
    return out / "r.onnx", x


@pytest.mark.skipif(not is_x86(), reason="the uint8-activation choice is the x86 recipe")
def test_cpu_int8_recipe_runs_every_conv_every_residual_add_and_the_pool_in_int8_on_onnxruntime(tiny_resnet, tmp_path):
    path, x = tiny_resnet
    out = tmp_path / "q.onnx"
    settings = quantize_int8_static(path, out, x, QuantSpec(), reduce_range=True)
    assert settings["activation_type"] == "uint8" and settings["per_channel"] is True
    assert settings["global_average_pools"] == 1
    ops = _optimized_ops(out, tmp_path)
    assert ops["QLinearConv"] == 20 and ops["Conv"] == 0  # no conv left in float behind a DequantizeLinear
    assert ops["QLinearAdd"] == 8 and ops["Add"] == 0
    assert ops["QLinearGlobalAveragePool"] == 1 and ops["ReduceMean"] == 0
    ref, got = _run(path, x), _run(out, x)
    assert np.mean(ref.argmax(1) == got.argmax(1)) >= 0.9


def test_int8_activations_leave_residual_blocks_in_float_on_this_cpu_which_is_why_the_recipe_avoids_them(tiny_resnet, tmp_path):
    path, x = tiny_resnet
    out = tmp_path / "s8.onnx"
    quantize_int8_static(path, out, x, QuantSpec(activation_type="int8"), reduce_range=True)
    ops = _optimized_ops(out, tmp_path)
    # documents onnxruntime's behaviour (docs/compression.md); on VNNI / Arm CPUs it may fuse more
    assert ops["QLinearConv"] + ops["Conv"] == 20
    if is_x86():
        assert ops["Conv"] > 0 or ops["Add"] > 0


def test_tensorrt_placement_is_symmetric_per_channel_and_quantizes_only_conv_gemm_and_residual_inputs(tiny_resnet, tmp_path):
    import onnx
    from onnx import numpy_helper

    path, x = tiny_resnet
    out = tmp_path / "trt.onnx"
    settings = quantize_int8_tensorrt(path, out, x, QuantSpec(target="tensorrt"))
    model = onnx.load(str(out))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    consumers = collections.defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            consumers[name].append(node.op_type)
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq and all(not inits[n.input[2]].any() for n in qdq if len(n.input) > 2)  # every zero point is 0
    assert all(inits[n.input[2]].dtype == np.int8 for n in qdq if len(n.input) > 2)
    dq_users = {op for n in qdq if n.op_type == "DequantizeLinear" for op in consumers[n.output[0]]}
    assert dq_users <= {"Conv", "Gemm", "Add"}
    weight_dq = [n for n in qdq if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4]
    assert all(inits[n.input[1]].size == inits[n.input[0]].shape[0] for n in weight_dq)  # one scale per output channel
    adds = [n for n in model.graph.node if n.op_type == "Add"]
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    assert len(adds) == 8 and settings["add_inputs_left_to_conv_fusion"] == 8
    assert all(sorted(producers.get(i) for i in add.input) == ["Conv", "DequantizeLinear"] for add in adds)
    ref, got = _run(path, x), _run(out, x)
    assert np.mean(ref.argmax(1) == got.argmax(1)) >= 0.9


def test_dynamic_int8_uses_integer_kernels_and_keeps_predictions(tiny_onnx, tiny_dataset, tmp_path):
    out = tmp_path / "d.onnx"
    settings = quantize_int8_dynamic(tiny_onnx, out, tiny_dataset.calibration.x, QuantSpec(method="dynamic"), reduce_range=True)
    info = inspect_onnx(out)
    assert info.precision == "int8" and info.n_quantized_nodes > 0
    assert settings["quantizer"].endswith("quantize_dynamic")
    x = tiny_dataset.evaluation.x
    assert np.mean(_run(tiny_onnx, x).argmax(1) == _run(out, x).argmax(1)) > 0.9


def test_fp16_artifact_keeps_float32_io_runs_on_onnxruntime_cpu_and_matches_fp32(tiny_onnx, tiny_dataset, tmp_path):
    import onnx

    out = tmp_path / "h.onnx"
    convert_fp16(tiny_onnx, out, tiny_dataset.calibration.x, QuantSpec(precision="fp16"))
    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert inspect_onnx(out).precision == "fp16" and inspect_onnx(out).file_mb < inspect_onnx(tiny_onnx).file_mb
    assert {w.precision for w in onnx_weights(model)} == {"fp16"}
    x = tiny_dataset.evaluation.x
    ref, got = _run(tiny_onnx, x), _run(out, x)
    assert got.dtype == np.float32 and np.max(np.abs(ref - got)) < 0.05


def test_too_small_calibration_split_is_an_error_naming_the_variant(tiny_onnx, tiny_dataset, tmp_path):
    with pytest.raises(InputError, match=r"dense\+int8: the calibration split has 5 samples; int8 calibration needs at least 10"):
        quantize_int8_static(
            tiny_onnx, tmp_path / "q.onnx", tiny_dataset.calibration.x[:5], QuantSpec(), reduce_range=True, label="dense+int8"
        )


def _nan_model(path):
    """input [N, 4] -> MatMul by -1 -> Log: NaN for any positive input, in every precision."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.full((4, 4), -1.0, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["h"], name="matmul"), helper.make_node("Log", ["h"], ["logits"], name="bad_log")],
        "nan",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(path))


@pytest.mark.parametrize(("recipe", "label"), [(convert_fp16, "dense+fp16"), (quantize_int8_dynamic, "dense+int8-dynamic")])
def test_a_model_that_produces_nan_is_refused_naming_the_variant_and_the_first_bad_node(tmp_path, recipe, label):
    _nan_model(tmp_path / "nan.onnx")
    x = np.ones((10, 4), np.float32)
    produces = r"the (fp16|quantized) model produces 40 NaN / infinite outputs.*node bad_log \(Log\)"
    with pytest.raises(InputError, match=rf"{re.escape(label)}: {produces}"):
        recipe(tmp_path / "nan.onnx", tmp_path / "out.onnx", x, QuantSpec(), reduce_range=False, label=label)
    check_finite(tmp_path / "nan.onnx", -x, label)  # negative inputs give finite outputs: no error


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_every_calibration_method_writes_an_int8_model_that_keeps_predictions(tiny_onnx, tiny_dataset, tmp_path, method):
    out = tmp_path / f"{method}.onnx"
    settings = quantize_int8_static(tiny_onnx, out, tiny_dataset.calibration.x, QuantSpec(calibration_method=method), reduce_range=True)
    assert settings["calibration_method"] == method and inspect_onnx(out).precision == "int8"
    x = tiny_dataset.evaluation.x
    assert np.mean(_run(tiny_onnx, x).argmax(1) == _run(out, x).argmax(1)) > 0.9
