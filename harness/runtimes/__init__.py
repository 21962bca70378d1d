"""Runtimes that execute an exported artifact. Each module imports its library lazily.

A runtime is one :class:`~harness.runtimes.base.Runner` subclass and one line here; the
class declares its artifact format, device kind, capabilities and availability probe.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.registry import Registry
from harness.runtimes.base import Runner, RunnerCapabilities

RUNTIMES: Registry[type[Runner]] = Registry("runtime")
RUNTIMES.register("onnxruntime", "harness.runtimes.onnxrt:OnnxRuntimeRunner")
RUNTIMES.register("openvino", "harness.runtimes.openvino:OpenVinoRunner")
RUNTIMES.register("torch", "harness.runtimes.torch_:TorchEagerRunner")
RUNTIMES.register("tensorrt", "harness.runtimes.tensorrt:TensorRTRunner")
RUNTIMES.register("onnxruntime-cuda", "harness.runtimes.onnxrt_gpu:OnnxRuntimeCudaRunner")
RUNTIMES.register("onnxruntime-tensorrt", "harness.runtimes.onnxrt_gpu:OnnxRuntimeTensorRTRunner")
RUNTIMES.register("torch-cuda", "harness.runtimes.torch_cuda:TorchCudaRunner")
RUNTIMES.register("torch-cuda-compile", "harness.runtimes.torch_cuda:TorchCompileCudaRunner")
RUNTIMES.register("torch-cuda-graphs", "harness.runtimes.torch_cuda:TorchCudaGraphsRunner")
RUNTIMES.register("torch-kernels", "harness.runtimes.torch_kernels:TorchKernelsRunner")

__all__ = ["RUNTIMES", "Runner", "RunnerCapabilities", "runtime_availability"]


def runtime_availability(names: Iterable[str] | None = None) -> dict[str, str | None]:
    """Each runtime (all registered ones by default) -> ``None`` when this host can run it, else why not."""
    return {name: RUNTIMES.get(name).unavailable_reason() for name in (RUNTIMES.names() if names is None else names)}
