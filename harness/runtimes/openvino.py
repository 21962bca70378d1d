# mypy: disable-error-code="import-untyped, import-not-found"
"""OpenVINO CPU plugin, running the harness's ONNX files (fp32 and int8 QDQ) directly.

The ONNX file is read once (``Core.read_model``); each batch size the runner sees is compiled
once as its own static-shape model (``Model.reshape`` to ``N x C x H x W``, then
``Core.compile_model`` on ``"CPU"``), so the kernels timed at batch 1 are batch 1's. Like the
onnxruntime runner it takes any batch (:meth:`Runner.evaluation_batch` is the base one: no
padding). Compile settings:

* ``PERFORMANCE_HINT = LATENCY``: one stream, all inference threads on the one request in flight
  (the measuring worker and the accuracy pass run one synchronous query at a time);
* ``INFERENCE_NUM_THREADS``: the harness's ``threads`` (unset: OpenVINO's default, all cores);
* ``ENABLE_CPU_PINNING = False``: the inference threads are not pinned to cores, as
  onnxruntime's intra-op threads are not; on a CPU that other processes share, pinned threads
  wait for their core (measured in docs/compression.md: pinned was 1.2-1.5x slower there);
* ``INFERENCE_PRECISION_HINT = f32``: float layers run in fp32 on every CPU, so an fp32 file is
  scored and timed in fp32 (OpenVINO's default on CPUs with AVX512-BF16 or AMX is bf16). The
  int8 QDQ pairs of a quantized file are still executed as int8 by OpenVINO's low-precision
  transformations; the hint covers the float parts only.

Outputs are returned as float32 numpy arrays that the runner owns (a copy of the output tensor).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.errors import InputError
from harness.runtimes.base import Runner, missing_modules_reason

#: compile properties shared by every compiled shape (threads are added per runner)
COMPILE_CONFIG: dict[str, str | bool] = {
    "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False,
}


def compile_config(threads: int | None) -> dict[str, Any]:
    """The properties passed to ``Core.compile_model`` for ``threads`` inference threads."""
    config: dict[str, Any] = dict(COMPILE_CONFIG)
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


class OpenVinoRunner(Runner):
    name = "openvino"
    artifact_format = "onnx"
    description = ("OpenVINO CPU plugin, ONNX read directly, static shape per batch size, "
                   "PERFORMANCE_HINT=LATENCY, INFERENCE_PRECISION_HINT=f32, threads not pinned")
    device_kind = "cpu"
    requires = (("openvino", "openvino"),)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return missing_modules_reason("openvino")

    def activate_impl(self) -> None:
        import openvino as ov

        self._core = ov.Core()
        try:
            self._model = self._core.read_model(str(self.artifact))
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses with multi-line text
            detail = " ".join(str(exc).split())
            raise InputError(f"ONNX file {self.artifact}: openvino cannot read it: {detail}") from None
        if len(self._model.inputs) != 1 or len(self._model.outputs) != 1:
            raise InputError(f"openvino: expected one input and one output in {self.artifact}, found "
                             f"{len(self._model.inputs)} -> {len(self._model.outputs)}")
        self._config = compile_config(self.threads)
        self._requests: dict[tuple[int, ...], Any] = {}  # input shape -> infer request of its compiled model

    def _request(self, shape: tuple[int, ...]) -> Any:
        """The infer request of the model compiled for ``shape`` (compiled on first use)."""
        request = self._requests.get(shape)
        if request is None:
            import openvino as ov

            try:
                self._model.reshape({self._model.input(0): ov.PartialShape(list(shape))})
                compiled = self._core.compile_model(self._model, "CPU", self._config)
            except Exception as exc:  # noqa: BLE001 - a shape the graph cannot take, an unsupported operator
                detail = " ".join(str(exc).split())
                raise InputError(f"openvino: cannot compile {self.artifact} for input shape {list(shape)}: "
                                 f"{detail}") from None
            request = self._requests[shape] = compiled.create_infer_request()
        return request

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        request = self._request(tuple(int(d) for d in x.shape))
        request.infer({0: x})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)

    def deactivate_impl(self) -> None:
        self._requests = {}
        self._model = None
        self._core = None
