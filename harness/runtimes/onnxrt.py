"""onnxruntime CPU execution provider."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from harness.errors import InputError
from harness.runtimes.base import Runner, missing_modules_reason

# how onnxruntime names an operator it has no kernel for (a custom domain, or a too-new opset)
_MISSING_OP = (
    re.compile(r"([\w.]*:?\w+\(-?\d+\)) is not a registered function/op"),
    re.compile(r"[Cc]ould not find an implementation for (\w+\(-?\d+\))(?: node with name '([^']*)')?"),
)


def cpu_session(path: Path, options=None, *, model_bytes: bytes | None = None):
    """An onnxruntime CPU session on ``path`` (or on ``model_bytes``, the same model serialised with its
    external data embedded); a file it cannot load (an operator it lacks, an invalid graph) is an
    :class:`InputError` naming the file and the operator, in one line."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(model_bytes if model_bytes is not None else str(path), options,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own (Fail, InvalidGraph, NotImplemented ...)
        text = str(exc)
        for pattern in _MISSING_OP:
            found = pattern.search(text)
            if found:
                node = f" (node {found.group(2)!r})" if found.lastindex == 2 and found.group(2) else ""
                raise InputError(f"ONNX file {path}: onnxruntime has no operator {found.group(1)}{node}") from None
        detail = " ".join(text.split()).split(" failed:", 1)[-1]
        raise InputError(f"ONNX file {path}: onnxruntime cannot load it: {detail}") from None


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"
    artifact_format = "onnx"
    description = "onnxruntime CPUExecutionProvider, graph optimisation level ORT_ENABLE_ALL"
    device_kind = "cpu"
    requires = (("onnxruntime", "cpu"),)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return missing_modules_reason("onnxruntime")

    def activate_impl(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        self._session = cpu_session(self.artifact, options)
        self._input = self._session.get_inputs()[0].name

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: x})[0]

    def deactivate_impl(self) -> None:
        self._session = None
