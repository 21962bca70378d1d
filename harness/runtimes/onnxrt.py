"""onnxruntime CPU execution provider."""

from __future__ import annotations

import numpy as np

from harness.runtimes.base import Runner


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"
    artifact_format = "onnx"
    description = "onnxruntime CPUExecutionProvider, graph optimisation level ORT_ENABLE_ALL"

    def activate_impl(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self.artifact), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: x})[0]

    def deactivate_impl(self) -> None:
        self._session = None
