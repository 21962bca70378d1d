"""int8 QDQ placed for TensorRT (artifact format ``onnx-trt-qdq``), made with onnxruntime's quantizer.

NVIDIA Model Optimizer's ONNX quantizer is the reference placement, but its ``[onnx]`` extra
downgrades onnx (1.23 -> 1.21) and installs onnxruntime-gpu beside onnxruntime (both own the
``onnxruntime`` module), so the harness reproduces the placement with ``quantize_static``:
symmetric int8 activations and weights (zero point 0, as TensorRT requires), per-channel
weights, Q/DQ only on the inputs of Conv / Gemm / MatMul and of residual Adds (outputs are left
to TensorRT, which propagates Q/DQ across ReLU and pooling and fuses them), float bias, and the
conv-side input of each residual Add left float so TensorRT fuses the add into that conv. The
rest of the graph stays float32 (under TensorRT 11's strong typing: FP32/TF32, where ModelOpt
would write fp16); see docs/compression.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.compress.quantize import FINITE_CHECK_SAMPLES, _static, calibration_count, check_finite
from harness.config import QuantSpec
from harness.progress import ProgressReporter

#: TensorRT's explicit-quantization placement: Q/DQ on the inputs of these ops only
TRT_QUANTIZED_OPS = ["Conv", "Gemm", "MatMul", "Add"]


def quantize_int8_tensorrt(
    onnx_in: Path,
    onnx_out: Path,
    calibration_x: np.ndarray,
    spec: QuantSpec,
    *,
    reduce_range: bool = False,
    input_name: str = "input",
    progress: ProgressReporter | None = None,
    label: str = "int8-trt",
) -> dict:
    """Write a QDQ model placed for TensorRT (symmetric, inputs of conv / gemm / residual add only)."""
    import onnx
    from onnxruntime.quantization import QuantType

    n = calibration_count(calibration_x, spec, label)
    _static(
        onnx_in, onnx_out, calibration_x, spec, n, label, progress, input_name,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True, reduce_range=False,
        op_types_to_quantize=TRT_QUANTIZED_OPS,
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,
            "OpTypesToExcludeOutputQuantization": TRT_QUANTIZED_OPS,
        },
    )
    model = onnx.load(str(onnx_out))
    n_unquantized = leave_conv_side_of_adds_to_tensorrt(model)
    onnx.save(model, str(onnx_out))
    onnx.checker.check_model(str(onnx_out))
    check_finite(onnx_out, calibration_x[:FINITE_CHECK_SAMPLES], label, input_name)
    return {
        "quantizer": "onnxruntime.quantization.quantize_static (TensorRT placement)",
        "format": "QDQ",
        "consumer": "tensorrt",
        "activation_type": "int8",
        "weight_type": "int8",
        "symmetric": True,
        "per_channel": True,
        "quantized_op_inputs": TRT_QUANTIZED_OPS,
        "add_inputs_left_to_conv_fusion": n_unquantized,
        "bias": "float",
        "calibration_method": spec.calibration_method,
        "calibration_samples": n,
        "requested_reduce_range_ignored": reduce_range,
    }


def leave_conv_side_of_adds_to_tensorrt(model) -> int:
    """Drop the Q/DQ pair on an Add input computed by a Conv / Gemm (TensorRT fuses that add into the conv).

    The residual (skip) input keeps its Q/DQ, as TensorRT's placement guide asks; when both inputs
    come from convs (a downsampling block) the first one (the main branch) is the one left float.
    Returns how many Add inputs were changed.
    """
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    removed, changed = set(), 0
    for add in [n for n in graph.node if n.op_type == "Add"]:
        for i, name in enumerate(add.input):
            dq = producers.get(name)
            q = producers.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            source = producers.get(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None
            if dq is None or q is None or source is None or source.op_type not in ("Conv", "Gemm", "MatMul"):
                continue
            add.input[i] = q.input[0]
            changed += 1
            if len(consumers.get(dq.output[0], [])) == 1 and len(consumers.get(q.output[0], [])) == 1:
                removed.update({id(dq), id(q)})
            break  # one input per Add
    keep = [n for n in graph.node if id(n) not in removed]
    del graph.node[:]
    graph.node.extend(keep)
    return changed


