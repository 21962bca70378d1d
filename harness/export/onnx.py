"""torch -> (torch.export program, ONNX) with a dynamic batch axis and a parity check."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OPSET = 20  # documented default: TensorRT 10.x/11.x and onnxruntime >= 1.17 all parse it
MAX_BATCH = 4096


@dataclass(frozen=True)
class ParityReport:
    max_abs_diff: float
    top1_agreement: float
    n_samples: int


def export_program(model, example: np.ndarray, path: Path):
    """Save a ``torch.export`` program with a dynamic batch dimension (the torch runtime's artifact)."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    x = torch.from_numpy(np.repeat(example[:1], 2, axis=0))  # batch 2: avoids specialising on 1
    program = torch.export.export(model.eval(), (x,), dynamic_shapes=({0: batch},))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, path)
    return program


def export_onnx(program, example: np.ndarray, path: Path) -> None:
    """ONNX via the dynamo exporter (opset 20, weights embedded, BN folded); checked with onnx.checker."""
    import onnx
    import torch

    x = torch.from_numpy(np.repeat(example[:1], 2, axis=0))
    path.parent.mkdir(parents=True, exist_ok=True)
    # the exporter prints progress on stdout (which belongs to --json output), logs that torchvision's
    # detection ops are skipped, and warns about its own pytree internals: none of it concerns the user
    registration_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration_log.level
    registration_log.setLevel(logging.ERROR)
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        torch.onnx.export(
            program,
            (x,),
            str(path),
            dynamo=True,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            external_data=False,
            verbose=False,
        )
    registration_log.setLevel(level)
    onnx.checker.check_model(str(path), full_check=True)


def parity(model, onnx_path: Path, x: np.ndarray) -> ParityReport:
    """Compare the ONNX file on onnxruntime CPU with the torch model on the same inputs."""
    import onnxruntime as ort

    from harness.models.train import predict_logits

    ref = predict_logits(model, x)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    return ParityReport(
        max_abs_diff=float(np.max(np.abs(ref - got))),
        top1_agreement=float(np.mean(ref.argmax(1) == got.argmax(1))),
        n_samples=len(x),
    )


def onnx_weights_mb(path: Path) -> float:
    """MiB of an ONNX file's initializers at their stored dtypes (external data is not opened)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    total = 0
    for init in model.graph.initializer:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
        total += int(np.prod(init.dims, dtype=np.int64)) * itemsize
    return total / 2**20
