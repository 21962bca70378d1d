"""Runtimes that execute an exported artifact. Each module imports its library lazily."""

from harness.registry import Registry

RUNTIMES = Registry("runtime")
RUNTIMES.register("onnxruntime", "harness.runtimes.onnxrt:OnnxRuntimeRunner")
RUNTIMES.register("torch", "harness.runtimes.torch_:TorchEagerRunner")
