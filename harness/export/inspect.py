"""Read back what an exported artifact really contains (never what was requested).

Weights are those of the Conv / ConvTranspose / Gemm / MatMul nodes and of their integer
forms (ConvInteger, MatMulInteger, QLinearConv, QLinearMatMul), found as initializers, behind
a DequantizeLinear (QDQ int8) or behind a Cast. A quantized weight is zero when it equals its
zero point. The same reader serves the pipeline's :class:`ArtifactInfo`, the 2:4 validator and
``harness inspect`` (:mod:`harness.export.report`); it works on any ONNX file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.hashing import file_sha256  # noqa: F401 - the digest ArtifactInfo records
from harness.records import ArtifactInfo
from harness.sparsity import check_2_4

# op type -> (weight input index, weight zero-point input index or None, bias input index or None)
_WEIGHT_OPS: dict[str, tuple[int, int | None, int | None]] = {
    "Conv": (1, None, 2),
    "ConvTranspose": (1, None, 2),
    "Gemm": (1, None, 2),
    "MatMul": (1, None, None),
    "ConvInteger": (1, 3, None),
    "MatMulInteger": (1, 3, None),
    "QLinearConv": (3, 5, 8),
    "QLinearMatMul": (3, 5, None),
}
#: nodes that (de)quantize tensors; their count is ArtifactInfo.n_quantized_nodes
QUANT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})
_INTEGER_OPS = frozenset({"ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul"})


@dataclass(frozen=True)
class LayerWeight:
    """One weight-bearing node and the weight it really holds."""

    name: str
    op_type: str
    weight: np.ndarray  # as stored: float32 / float16, or int8 / uint8 when quantized
    zero_point: Any  # the stored value meaning 0 (0 for float weights), broadcastable to ``weight``
    reduction_axis: int  # the axis a dot product runs over (2:4 groups run along it)
    quantized: bool
    bias_size: int

    @property
    def precision(self) -> str:
        return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(self.weight.dtype.name, self.weight.dtype.name)

    @property
    def zeros(self) -> int:
        return int(np.count_nonzero(self.weight == self.zero_point))


def _mb(path: Path) -> float:
    return path.stat().st_size / 2**20


def _attr(node, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _along(zp: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """Reshape a per-channel zero point so it broadcasts along ``axis`` of an ``ndim`` tensor."""
    if zp.size <= 1:
        return zp.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = zp.size
    return zp.reshape(shape)


def _reduction_axis(node, weight: np.ndarray) -> int:
    if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
        return 1
    if node.op_type == "ConvTranspose":
        return 0
    if node.op_type == "Gemm":
        return 1 if _attr(node, "transB", 0) else 0
    return weight.ndim - 2 if weight.ndim >= 2 else 0  # MatMul family: B is [..., K, N]


def onnx_weights(model) -> list[LayerWeight]:
    """Every weight-bearing node of a loaded ONNX model with its constant weight (others skipped)."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def constant(name: str) -> tuple[np.ndarray, Any, bool] | None:
        if name in inits:
            return numpy_helper.to_array(inits[name]), 0, False
        node = producers.get(name)
        if node is None:
            return None
        if node.op_type == "Cast" and node.input[0] in inits:
            return numpy_helper.to_array(inits[node.input[0]]), 0, False
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            w = numpy_helper.to_array(inits[node.input[0]])
            zp = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] in inits else np.zeros(())
            return w, _along(zp, _attr(node, "axis", 1), w.ndim), True
        return None

    layers = []
    for node in graph.node:
        spec = _WEIGHT_OPS.get(node.op_type)
        if spec is None or len(node.input) <= spec[0]:
            continue
        found = constant(node.input[spec[0]])
        if found is None:
            continue
        w, zp, quantized = found
        if spec[1] is not None:  # integer ops carry the weight's zero point as an input
            quantized = True
            zp_in = node.input[spec[1]] if len(node.input) > spec[1] else ""
            zp = numpy_helper.to_array(inits[zp_in]) if zp_in in inits else np.zeros(())
            zp = _along(zp, 0 if "Conv" in node.op_type else -1, w.ndim)
        bias = constant(node.input[spec[2]]) if spec[2] is not None and len(node.input) > spec[2] and node.input[spec[2]] else None
        layers.append(
            LayerWeight(node.name or node.output[0], node.op_type, w, zp, _reduction_axis(node, w), quantized,
                        int(bias[0].size) if bias else 0)
        )
    return layers


def model_precision(model, layers: list[LayerWeight]) -> str:
    """int8 when the graph quantizes anything, else the float type of its weights."""
    if any(n.op_type in QUANT_OPS or n.op_type in _INTEGER_OPS for n in model.graph.node):
        return "int8"
    kinds = {layer.precision for layer in layers}
    return "fp16" if "fp16" in kinds else "bf16" if "bf16" in kinds else "fp32"


def _summarise(path: Path, fmt: str, layers: dict[str, tuple[int, int]], n_qdq: int, precision: str) -> ArtifactInfo:
    total = sum(n for n, _ in layers.values())
    zeros = sum(z for _, z in layers.values())
    return ArtifactInfo(
        path=str(path),
        format=fmt,
        file_mb=_mb(path),
        n_weights=total,
        weight_sparsity=zeros / total if total else 0.0,
        layer_sparsity={name: (z / n if n else 0.0) for name, (n, z) in layers.items()},
        n_quantized_nodes=n_qdq,
        precision=precision,
        sha256=file_sha256(path),
    )


def inspect_onnx(path: Path, fmt: str = "onnx") -> ArtifactInfo:
    import onnx

    model = onnx.load(str(path))
    weights = onnx_weights(model)
    layers = {w.name: (int(w.weight.size), w.zeros) for w in weights}
    n_qdq = sum(1 for node in model.graph.node if node.op_type in QUANT_OPS)
    return _summarise(Path(path), fmt, layers, n_qdq, model_precision(model, weights))


def validate_2_4(path: Path):
    """Per weight layer of an ONNX file: its :class:`~harness.sparsity.TwoFourCheck`."""
    import onnx

    return {w.name: check_2_4(w.weight, w.reduction_axis, w.zero_point) for w in onnx_weights(onnx.load(str(path)))}


def inspect_program(path: Path, fmt: str = "torch.export") -> ArtifactInfo:
    from harness.export.pt2 import load_program

    program = load_program(path)
    layers: dict[str, tuple[int, int]] = {}
    for name, tensor in program.state_dict.items():
        if name.endswith("weight") and tensor.ndim in (2, 4):  # conv and linear kernels; BN weights are 1-D
            layers[name] = (int(tensor.numel()), int((tensor == 0).sum()))
    return _summarise(path, fmt, layers, 0, "fp32")
