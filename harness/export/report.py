"""What an ONNX file holds, layer by layer: the data behind ``harness inspect`` and ``details.json``.

Per weight layer: parameters, exact-zero fraction, 2:4 compliance along the reduction axis,
quantized or not, weight precision, MACs. Whole model: parameters, MACs, file size, precision,
Q/DQ node count, opset. MACs are counted from the graph after ONNX shape inference, per sample
(a symbolic batch dimension counts as 1): Conv ``prod(output) * C_in/group * kH * kW``,
Gemm / MatMul ``prod(output) * K``. A layer whose output shape cannot be inferred has
``macs = None`` and the model total is ``None`` with the reason, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.export.inspect import QUANT_OPS, LayerWeight, _mb, model_precision, onnx_weights


@dataclass(frozen=True)
class LayerInspection:
    name: str
    op_type: str
    weight_shape: list[int]
    params: int  # weight + bias elements
    sparsity: float  # fraction of exact zeros in the weight (zero point for quantized weights)
    two_four: str  # "yes" | "no (N of M groups)" | "n/a (reduction R)"
    two_four_compliant: bool
    quantized: bool
    precision: str  # fp32 | fp16 | int8 | uint8 (of the stored weight)
    macs: int | None


@dataclass(frozen=True)
class ModelInspection:
    path: str
    file_mb: float
    opset: int | None
    precision: str
    parameters: int
    macs: int | None
    macs_unavailable_reason: str | None
    weight_sparsity: float
    n_quantized_nodes: int
    n_two_four_layers: int  # layers whose every group along the reduction axis is 2:4
    n_two_four_eligible: int  # layers whose reduction size is a multiple of 4
    layers: list[LayerInspection]


def _static_shapes(model) -> dict[str, list[int | None]]:
    """Tensor name -> shape after shape inference; symbolic dimensions become 1 (one sample)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001 - inference is best effort; MACs then say they are unavailable
        inferred = model
    shapes = {}
    graph = inferred.graph
    for vi in [*graph.value_info, *graph.output, *graph.input]:
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else (1 if d.HasField("dim_param") else None)
                for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    return shapes


def _known(shape: list[int | None] | None) -> bool:
    return shape is not None and len(shape) > 0 and all(d is not None for d in shape)


def _macs(layer: LayerWeight, input_shape, output_shape) -> int | None:
    w = layer.weight
    if layer.op_type == "ConvTranspose":  # every input pixel scatters C_out/g * kH * kW products
        return int(np.prod(input_shape)) * int(np.prod(w.shape[1:])) if _known(input_shape) else None
    if not _known(output_shape):
        return None
    if layer.op_type in ("Conv", "ConvInteger", "QLinearConv"):
        return int(np.prod(output_shape)) * int(np.prod(w.shape[1:]))
    return int(np.prod(output_shape)) * int(w.shape[layer.reduction_axis])


def inspect_model(path: Path) -> ModelInspection:
    import onnx

    from harness.sparsity import check_2_4

    path = Path(path)
    if not path.is_file():
        raise InputError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own DecodeError family
        raise InputError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    weights = onnx_weights(model)
    shapes = _static_shapes(model)
    nodes = {n.name or n.output[0]: n for n in model.graph.node}
    layers = []
    for w in weights:
        check = check_2_4(w.weight, w.reduction_axis, w.zero_point)
        if not check.eligible:
            two_four = f"n/a (reduction {w.weight.shape[w.reduction_axis] if w.weight.ndim else 0})"
        elif check.compliant:
            two_four = "yes"
        else:
            two_four = f"no ({check.n_violations}/{check.n_groups} groups fail)"
        layers.append(
            LayerInspection(
                name=w.name,
                op_type=w.op_type,
                weight_shape=[int(d) for d in w.weight.shape],
                params=int(w.weight.size) + w.bias_size,
                sparsity=w.zeros / w.weight.size if w.weight.size else 0.0,
                two_four=two_four,
                two_four_compliant=check.compliant,
                quantized=w.quantized,
                precision=w.precision,
                macs=_macs(w, shapes.get(nodes[w.name].input[0]), shapes.get(nodes[w.name].output[0])),
            )
        )
    missing = [layer.name for layer in layers if layer.macs is None]
    n_weights = sum(w.weight.size for w in weights)
    opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return ModelInspection(
        path=str(path),
        file_mb=_mb(path),
        opset=opsets[0] if opsets else None,
        precision=model_precision(model, weights),
        parameters=sum(layer.params for layer in layers),
        macs=None if missing else sum(layer.macs or 0 for layer in layers),  # none missing: every one is set
        macs_unavailable_reason=f"shape inference could not resolve the output of {missing[0]}" if missing else None,
        weight_sparsity=sum(w.zeros for w in weights) / n_weights if n_weights else 0.0,
        n_quantized_nodes=sum(1 for n in model.graph.node if n.op_type in QUANT_OPS),
        n_two_four_layers=sum(layer.two_four_compliant for layer in layers),
        n_two_four_eligible=sum(not layer.two_four.startswith("n/a") for layer in layers),
        layers=layers,
    )
