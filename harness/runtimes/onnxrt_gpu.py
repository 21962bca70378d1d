"""onnxruntime on NVIDIA GPUs: the CUDA execution provider, and the TensorRT one (CUDA as fallback).

Both need the ``onnxruntime-gpu`` build (x86_64 wheels on PyPI; NVIDIA's own builds on
Jetson). ``onnxruntime`` and ``onnxruntime-gpu`` install the same import package, so never
both in one environment. A session that silently falls back to another provider (no GPU,
TensorRT libraries not found) is refused at activation: a number measured on the CPU must
never be labelled CUDA or TensorRT. The TensorRT provider gets a pre-typed ONNX (fp16 casts
or Q/DQ) and no fp16/int8 switches, which map onto builder flags TensorRT 11 removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness.errors import DeviceUnavailable, MissingDependency
from harness.runtimes.base import Runner, missing_modules_reason

GPU_BUILD_HINT = ("pip uninstall onnxruntime && pip install onnxruntime-gpu (x86_64); on Jetson, NVIDIA's "
                  "onnxruntime-gpu build for your JetPack")


class _OnnxRuntimeGpuRunner(Runner):
    artifact_format = "onnx"
    device_kind = "cuda"
    requires = (("onnxruntime", "cuda"),)  # onnxruntime-gpu: the cuda extra
    provider: ClassVar[str]

    @classmethod
    def unavailable_reason(cls) -> str | None:
        missing = missing_modules_reason("onnxruntime", extra="cuda")
        if missing:
            return missing
        import onnxruntime as ort

        if cls.provider not in ort.get_available_providers():
            return f"this onnxruntime build has no {cls.provider} (install onnxruntime-gpu)"
        return None

    def __init__(self, artifact: Path, *, threads: int | None = None, ort: Any = None,
                 cache_dir: Path | None = None) -> None:
        super().__init__(artifact, threads=threads)
        self._ort = ort
        self.cache_dir = Path(cache_dir) if cache_dir else self.artifact.parent / "ort-tensorrt-cache"

    def providers(self) -> list[Any]:
        return [("CUDAExecutionProvider", {"device_id": 0})]

    def activate_impl(self) -> None:
        ort = self._ort
        if ort is None:
            import onnxruntime

            ort = onnxruntime
        available = ort.get_available_providers()
        if self.provider not in available:
            exc = MissingDependency(f"onnxruntime-gpu ({self.provider})", purpose=f"the {self.name} runtime")
            exc.hint = GPU_BUILD_HINT
            raise exc
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.artifact), options, providers=self.providers())
        except Exception as exc:  # onnxruntime raises its own (Fail, RuntimeException ...) when no GPU works
            raise DeviceUnavailable(f"{self.name}: {self.provider} could not start: {exc}") from None
        used = self._session.get_providers()
        if not used or used[0] != self.provider:
            raise DeviceUnavailable(
                f"{self.name}: onnxruntime fell back to {', '.join(used) or 'nothing'} instead of {self.provider} "
                "(no visible GPU, or its CUDA/cuDNN/TensorRT libraries were not found)")
        self._input = self._session.get_inputs()[0].name

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: x})[0]

    def deactivate_impl(self) -> None:
        self._session = None


class OnnxRuntimeCudaRunner(_OnnxRuntimeGpuRunner):
    name = "onnxruntime-cuda"
    provider = "CUDAExecutionProvider"
    description = "onnxruntime CUDAExecutionProvider (onnxruntime-gpu), graph optimisation level ORT_ENABLE_ALL"


class OnnxRuntimeTensorRTRunner(_OnnxRuntimeGpuRunner):
    name = "onnxruntime-tensorrt"
    provider = "TensorrtExecutionProvider"
    description = ("onnxruntime TensorrtExecutionProvider with engine and timing caches, sparse weights allowed, "
                   "CUDAExecutionProvider for unsupported nodes")

    def providers(self) -> list[Any]:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return [
            (self.provider, {
                "device_id": 0,
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(self.cache_dir),
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": str(self.cache_dir),
                "trt_sparsity_enable": True,
                "trt_max_workspace_size": 1 << 30,
            }),
            *super().providers(),
        ]
