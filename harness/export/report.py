"""What an ONNX file holds, layer by layer: the data behind ``harness inspect`` and ``details.json``.

Per weight layer: parameters, exact-zero fraction, 2:4 compliance along the reduction axis,
quantized or not, weight precision, MACs. Whole model: parameters, MACs, file size, precision,
Q/DQ node count, opset, producer (name and version), the graph's input and output tensors (name,
dtype, shape with dynamic axes by name) and a histogram of its op types. MACs are counted from the
graph after ONNX shape inference, per sample (a symbolic batch dimension counts as 1): Conv ``prod(output) * C_in/group * kH * kW``,
Gemm / MatMul ``prod(output) * K``. A layer whose output shape cannot be inferred has
``macs = None`` and the model total is ``None`` with the reason, never a guess.

A ``.pt2`` program (:func:`inspect_program_file`) has its signature's inputs and outputs, the
``call_function`` targets of its graph by count, and its parameter and buffer sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
class TensorInspection:
    """One input or output of a graph; a dynamic axis is its symbolic name (``"batch"``, ``"s0"``), an axis
    without any name ``"?"``."""

    name: str
    dtype: str | None  # numpy-style: float32, int64 ...; None when the graph does not say
    shape: list[int | str] | None  # None: rank unknown


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
    producer_name: str | None = None
    producer_version: str | None = None
    inputs: list[TensorInspection] = field(default_factory=list)  # graph inputs that are not initializers
    outputs: list[TensorInspection] = field(default_factory=list)
    op_histogram: dict[str, int] = field(default_factory=dict)  # op type (``domain.Op`` outside ai.onnx) -> nodes, most first


def _onnx_tensor(vi) -> TensorInspection:
    import onnx

    t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
    dtype = None
    if t is not None and t.elem_type:
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
        except (KeyError, TypeError, ValueError):  # a type numpy has no name for (bfloat16, float8 ...)
            dtype = onnx.TensorProto.DataType.Name(t.elem_type).lower()
    shape: list[int | str] | None = None
    if t is not None and t.HasField("shape"):
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    return TensorInspection(vi.name, dtype, shape)


def histogram(names) -> dict[str, int]:
    """Count of each name, most frequent first (ties by name)."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


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
    initializers = {i.name for i in model.graph.initializer}
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
        producer_name=model.producer_name or None,
        producer_version=model.producer_version or None,
        inputs=[_onnx_tensor(vi) for vi in model.graph.input if vi.name not in initializers],
        outputs=[_onnx_tensor(vi) for vi in model.graph.output],
        op_histogram=histogram(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
                               for n in model.graph.node),
    )


# --------------------------------------------------------------------------- torch.export programs


@dataclass(frozen=True)
class ProgramInspection:
    """What a ``.pt2`` (``torch.export``) program holds: its signature's user inputs and outputs (dtype and
    shape from the graph's example values; a dynamic axis is its symbol), the ``call_function`` targets by
    count, parameters and buffers."""

    path: str
    file_mb: float
    parameters: int  # elements of the program's parameters
    buffers: int  # elements of its buffers and constants
    inputs: list[TensorInspection]
    outputs: list[TensorInspection]
    op_histogram: dict[str, int]  # e.g. aten.convolution.default -> nodes, most first


def _fx_tensor(name: str, node) -> TensorInspection:
    val = node.meta.get("val") if node is not None else None
    if val is None or not hasattr(val, "shape"):
        return TensorInspection(name, None, None)
    shape: list[int | str] = [int(d) if isinstance(d, int) else str(d) for d in val.shape]
    return TensorInspection(name, str(val.dtype).removeprefix("torch."), shape)


def inspect_program_file(path: Path) -> ProgramInspection:
    """:class:`ProgramInspection` of a ``.pt2`` file, opened through :func:`harness.export.pt2.load_program`
    (refused, nothing executed, unless it holds only graphs and tensors)."""
    from harness.export.pt2 import load_program

    path = Path(path)
    if not path.is_file():
        raise InputError(f"exported program not found: {path}")
    program = load_program(path)
    graph = program.graph
    nodes = {n.name: n for n in graph.nodes}
    signature = program.graph_signature
    inputs = [_fx_tensor(name, nodes.get(name)) for name in signature.user_inputs]
    output_node = next(n for n in graph.nodes if n.op == "output")
    returned = output_node.args[0] if output_node.args else []
    returned = returned if isinstance(returned, list | tuple) else [returned]
    by_name = {getattr(n, "name", None): n for n in returned}
    outputs = [_fx_tensor(name, by_name.get(name)) for name in signature.user_outputs]
    buffers = [*program.state_dict.items(), *getattr(program, "constants", {}).items()]
    params = set(signature.parameters)
    return ProgramInspection(
        path=str(path),
        file_mb=_mb(path),
        parameters=sum(int(t.numel()) for k, t in buffers if k in params and hasattr(t, "numel")),
        buffers=sum(int(t.numel()) for k, t in buffers if k not in params and hasattr(t, "numel")),
        inputs=inputs,
        outputs=outputs,
        op_histogram=histogram(str(n.target) for n in graph.nodes if n.op == "call_function"),
    )
