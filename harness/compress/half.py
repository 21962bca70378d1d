"""fp16: weights and compute in float16, inputs and outputs kept float32.

Uses the float16 converter that ships inside onnxruntime (``onnxruntime.transformers.float16``,
the same code as onnxconverter-common's), so no extra dependency: ``keep_io_types=True`` puts a
Cast after the input and before the output, so callers keep feeding float32. The file runs on
onnxruntime's CPU EP, but not in float16: the CPU EP has no fp16 Conv / Gemm kernels, so its
graph optimiser casts the weights back and runs float32 kernels (checked on the optimised graph;
the artifact is half the size, no faster). It is the form TensorRT 11 (strongly typed) and GPUs
want. A file whose outputs are NaN or infinite on the calibration split is refused, naming the
first bad node.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

from harness.compress.quantize import FINITE_CHECK_SAMPLES, check_finite
from harness.config import QuantSpec
from harness.progress import ProgressReporter


def convert_fp16(
    onnx_in: Path,
    onnx_out: Path,
    calibration_x: np.ndarray,
    spec: QuantSpec,
    *,
    reduce_range: bool = False,
    input_name: str = "input",
    progress: ProgressReporter | None = None,
    label: str = "fp16",
) -> dict:
    import onnx

    with _quiet_converter():
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(onnx_in)), keep_io_types=True)
    toposort(model.graph)  # the converter appends its I/O Casts at the end; the ONNX checker wants graph order
    onnx.save(model, str(onnx_out))
    onnx.checker.check_model(str(onnx_out))
    check_finite(onnx_out, calibration_x[:FINITE_CHECK_SAMPLES], label, input_name, what="fp16 model")
    return {
        "converter": "onnxruntime.transformers.float16.convert_float_to_float16",
        "keep_io_types": True,
        "io_type": "float32",
    }


def toposort(graph) -> None:
    """Reorder ``graph.node`` in place so every node comes after the producers of its inputs."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError(f"graph has a cycle or a missing input at node {pending[0].name}")
        for node in ready:
            available.update(node.output)
        ordered += ready
        pending = [n for n in pending if all(n is not r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)


@contextlib.contextmanager
def _quiet_converter():
    """The converter logs a warning for every constant it clamps to the fp16 range; keep it off the terminal."""
    log = logging.getLogger("onnxruntime.transformers.float16")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
