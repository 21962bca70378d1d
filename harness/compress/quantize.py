"""Post-training quantization of an exported ONNX file (onnxruntime's quantization tools).

Recipes (``QUANTIZERS`` in :mod:`harness.compress`; each writes one file and returns the
settings it used, which go into the variant's ``details.json``):

* ``int8``: static QDQ for the onnxruntime CPU EP, calibrated on the calibration split
  (disjoint from evaluation), per-channel int8 weights. Activations are **uint8 on x86**:
  onnxruntime fuses QDQ into QLinearConv / QLinearAdd there only where it can convert
  activations to uint8 (MLAS's native u8 x s8 path); with int8 activations, measured on this
  project's AVX2 machine, 12 of ResNet-18's 20 convs and all 8 residual adds stayed float
  behind DequantizeLinear and int8 was no faster than fp32 (docs/compression.md).
  ``reduce_range`` (7-bit weights) is passed on CPUs without VNNI: full-range int8 weights
  saturate the 16-bit intermediate sums of the AVX2 kernels (0.92 -> 0.46 top-1 measured on
  the digits CNN).
  The global average pool is rewritten so it runs in uint8 too (:func:`prepare_for_cpu_int8`).
* ``int8-trt``: static QDQ placed for TensorRT, see :mod:`harness.compress.trt_qdq`.
* ``int8-dynamic``: ``quantize_dynamic`` (weights int8 ahead of time, activations at run time).
* ``fp16``: see :mod:`harness.compress.half`.

Every recipe runs its output on the calibration split and refuses a file that produces NaN
or infinity, naming the variant and the first node whose output is not finite.
"""

from __future__ import annotations

import platform
import tempfile
from pathlib import Path

import numpy as np

from harness.config import QuantSpec
from harness.errors import InputError
from harness.progress import ProgressReporter

MIN_CALIBRATION_SAMPLES = 10
CALIBRATION_BATCH = 8
FINITE_CHECK_SAMPLES = 64
_METHODS = ("minmax", "entropy", "percentile")


def is_x86() -> bool:
    return platform.machine().lower() in {"x86_64", "amd64", "i386", "i686", "x86"}


def activation_type_for(spec: QuantSpec) -> str:
    if spec.activation_type != "auto":
        return spec.activation_type
    return "uint8" if is_x86() else "int8"


def calibration_count(calibration_x: np.ndarray, spec: QuantSpec, label: str) -> int:
    n = min(spec.calibration_samples, len(calibration_x))
    if n < MIN_CALIBRATION_SAMPLES:
        raise InputError(
            f"{label}: the calibration split has {len(calibration_x)} samples; int8 calibration needs at least "
            f"{MIN_CALIBRATION_SAMPLES} (raise dataset.split.calibration)"
        )
    return n


def _reader(calibration_x: np.ndarray, n: int, input_name: str, task, batch: int):
    """Calibration batches; the histogram calibrators (entropy, percentile) need equal batches, so they get 1."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(calibration_x[i : min(i + batch, n)] for i in range(0, n, batch))

        def get_next(self):
            batch = next(self._batches, None)
            if batch is None:
                return None
            task.advance(len(batch))
            return {input_name: batch}

    return Reader()


def _static(onnx_in: Path, onnx_out: Path, calibration_x, spec: QuantSpec, n: int, label: str, progress, input_name: str,
            prepare=None, **options) -> dict:
    """Pre-process, optionally rewrite (``prepare(model) -> (nodes to keep float, facts)``), calibrate, quantize."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quant_pre_process, quantize_static

    methods = dict(zip(_METHODS, (CalibrationMethod.MinMax, CalibrationMethod.Entropy, CalibrationMethod.Percentile), strict=True))
    progress = progress or ProgressReporter()
    with tempfile.TemporaryDirectory() as tmp, progress.task(f"calibrating {label}", total=n) as task:
        pre = Path(tmp) / "preprocessed.onnx"
        quant_pre_process(str(onnx_in), str(pre))  # shape inference + graph clean-up, as onnxruntime recommends
        facts: dict = {}
        if prepare is not None:
            model = onnx.load(str(pre))
            keep_float, facts = prepare(model)
            onnx.save(model, str(pre))
            options["nodes_to_exclude"] = keep_float
        quantize_static(
            str(pre), str(onnx_out),
            _reader(calibration_x, n, input_name, task, CALIBRATION_BATCH if spec.calibration_method == "minmax" else 1),
            quant_format=QuantFormat.QDQ,
            calibrate_method=methods[spec.calibration_method], **options,
        )
    return facts


def quantize_int8_static(
    onnx_in: Path,
    onnx_out: Path,
    calibration_x: np.ndarray,
    spec: QuantSpec,
    *,
    reduce_range: bool,
    input_name: str = "input",
    progress: ProgressReporter | None = None,
    label: str = "int8",
) -> dict:
    """Write the harness's CPU int8 QDQ model calibrated on ``calibration_x``; returns the settings used."""
    from onnxruntime.quantization import QuantType

    n = calibration_count(calibration_x, spec, label)
    activation = activation_type_for(spec)
    facts = _static(
        onnx_in, onnx_out, calibration_x, spec, n, label, progress, input_name, prepare=prepare_for_cpu_int8,
        activation_type=QuantType.QUInt8 if activation == "uint8" else QuantType.QInt8,
        weight_type=QuantType.QInt8, per_channel=spec.per_channel, reduce_range=reduce_range,
    )
    check_finite(onnx_out, calibration_x[:FINITE_CHECK_SAMPLES], label, input_name)
    return {
        "quantizer": "onnxruntime.quantization.quantize_static",
        "format": "QDQ",
        "activation_type": activation,
        "weight_type": "int8",
        "per_channel": spec.per_channel,
        "reduce_range": reduce_range,
        "calibration_method": spec.calibration_method,
        "calibration_samples": n,
        **facts,
    }


def prepare_for_cpu_int8(model) -> tuple[list[str], dict]:
    """The CPU recipe's graph change before quantization; returns (nodes kept float, facts for details.json).

    ReduceMean over H and W (the dynamo exporter's global average pool) becomes GlobalAveragePool,
    which onnxruntime runs as QLinearGlobalAveragePool in uint8 instead of dequantizing the last
    feature map into a float ReduceMean. (Keeping a small stem conv float was tried and measured
    slower: docs/compression.md.)
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    ranks = {vi.name: len(vi.type.tensor_type.shape.dim) for vi in [*graph.value_info, *graph.input]
             if vi.type.tensor_type.HasField("shape")}
    pooled = 0
    for i, node in enumerate(list(graph.node)):
        if node.op_type != "ReduceMean" or ranks.get(node.input[0]) != 4:
            continue
        axes = numpy_helper.to_array(inits[node.input[1]]).tolist() if len(node.input) > 1 and node.input[1] in inits else \
            next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
        keepdims = next((a.i for a in node.attribute if a.name == "keepdims"), 1)
        if axes is None or keepdims != 1 or sorted(a % 4 for a in axes) != [2, 3]:
            continue
        graph.node.remove(node)
        graph.node.insert(i, helper.make_node("GlobalAveragePool", [node.input[0]], list(node.output), name=node.name))
        pooled += 1
    used = {name for n in graph.node for name in n.input}
    unused = [t for t in graph.initializer if t.name not in used]  # the axes; onnxruntime warns about each one
    for t in unused:
        graph.initializer.remove(t)
    return [], {"global_average_pools": pooled}


def quantize_int8_dynamic(
    onnx_in: Path,
    onnx_out: Path,
    calibration_x: np.ndarray,
    spec: QuantSpec,
    *,
    reduce_range: bool,
    input_name: str = "input",
    progress: ProgressReporter | None = None,
    label: str = "int8-dynamic",
) -> dict:
    """onnxruntime ``quantize_dynamic``: uint8 weights on x86 (u8 x u8 kernels: no saturation, 3x faster
    ConvInteger than int8 weights measured here), int8 elsewhere."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    weight = "uint8" if is_x86() else "int8"
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        quant_pre_process(str(onnx_in), str(pre))
        quantize_dynamic(
            str(pre), str(onnx_out), weight_type=QuantType.QUInt8 if weight == "uint8" else QuantType.QInt8,
            per_channel=spec.per_channel, reduce_range=reduce_range and weight == "int8",
        )
    check_finite(onnx_out, calibration_x[:FINITE_CHECK_SAMPLES], label, input_name)
    return {
        "quantizer": "onnxruntime.quantization.quantize_dynamic",
        "format": "integer ops (ConvInteger / MatMulInteger, activations quantized at run time)",
        "activation_type": "uint8",
        "weight_type": weight,
        "per_channel": spec.per_channel,
        "reduce_range": reduce_range and weight == "int8",
    }


def first_non_finite_node(onnx_path: Path, x: np.ndarray, input_name: str = "input") -> str | None:
    """The first node (in graph order) whose output is NaN or infinite on ``x``, as 'name (OpType)'."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    known = {o.name for o in model.graph.output}
    order = []
    for node in model.graph.node:
        for out in node.output:
            if out and out not in known:
                model.graph.output.append(onnx.ValueInfoProto(name=out))
            order.append((out, node))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(names, {input_name: x}), strict=True))
    for out, node in order:
        v = values.get(out)
        if v is not None and np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v)):
            return f"{node.name or out} ({node.op_type})"
    return None


def check_finite(onnx_path: Path, x: np.ndarray, label: str, input_name: str = "input", what: str = "quantized model") -> None:
    """Raise InputError naming the variant (and the first bad node) if the model yields NaN / inf on ``x``."""
    import onnxruntime as ort

    if len(x) == 0:
        return
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = session.run(None, {input_name: x})[0]
    bad = int(np.count_nonzero(~np.isfinite(out)))
    if bad:
        where = first_non_finite_node(onnx_path, x, input_name)
        raise InputError(
            f"{label}: the {what} produces {bad} NaN / infinite outputs on the calibration split"
            + (f"; first non-finite tensor: the output of node {where}" if where else "")
        )
