"""Read back what an exported artifact really contains (never what was requested).

Sparsity is counted over the weights of Conv / Gemm / MatMul nodes (ONNX) or of the
conv / linear parameters (torch.export). For QDQ models the weight is the int8
initializer behind a DequantizeLinear, and a weight is zero when it equals its zero point.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from harness.records import ArtifactInfo

_WEIGHT_OPS = {"Conv": 1, "Gemm": 1, "MatMul": 1, "ConvTranspose": 1}
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _mb(path: Path) -> float:
    return path.stat().st_size / 2**20


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
        sha256=_sha256(path),
    )


def inspect_onnx(path: Path) -> ArtifactInfo:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def weight_of(name: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        if name in inits:
            return numpy_helper.to_array(inits[name]), None
        node = producers.get(name)
        if node is not None and node.op_type == "DequantizeLinear" and node.input[0] in inits:
            zp = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] in inits else None
            return numpy_helper.to_array(inits[node.input[0]]), zp
        return None

    layers: dict[str, tuple[int, int]] = {}
    for node in graph.node:
        if node.op_type not in _WEIGHT_OPS or len(node.input) < 2:
            continue
        found = weight_of(node.input[_WEIGHT_OPS[node.op_type]])
        if found is None:
            continue
        w, zp = found
        if zp is not None and zp.size > 1:  # per-channel zero points along axis 0
            zp = zp.reshape((-1,) + (1,) * (w.ndim - 1))
        zero = w == (zp if zp is not None else 0)
        layers[node.name or node.output[0]] = (int(w.size), int(zero.sum()))
    n_qdq = sum(1 for node in graph.node if node.op_type in _QDQ_OPS)
    precision = "int8" if n_qdq else "fp32"
    return _summarise(path, "onnx", layers, n_qdq, precision)


def inspect_program(path: Path) -> ArtifactInfo:
    import torch

    program = torch.export.load(str(path))
    layers: dict[str, tuple[int, int]] = {}
    for name, tensor in program.state_dict.items():
        if name.endswith("weight") and tensor.ndim in (2, 4):  # conv and linear kernels; BN weights are 1-D
            layers[name] = (int(tensor.numel()), int((tensor == 0).sum()))
    return _summarise(path, "torch.export", layers, 0, "fp32")
