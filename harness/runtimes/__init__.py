"""Runtimes that execute an exported artifact. Each module imports its library lazily."""

from harness.registry import Registry

RUNTIMES = Registry("runtime")
RUNTIMES.register("onnxruntime", "harness.runtimes.onnxrt:OnnxRuntimeRunner")
RUNTIMES.register("torch", "harness.runtimes.torch_:TorchEagerRunner")
RUNTIMES.register("tensorrt", "harness.runtimes.tensorrt:TensorRTRunner")
RUNTIMES.register("onnxruntime-cuda", "harness.runtimes.onnxrt_gpu:OnnxRuntimeCudaRunner")
RUNTIMES.register("onnxruntime-tensorrt", "harness.runtimes.onnxrt_gpu:OnnxRuntimeTensorRTRunner")
RUNTIMES.register("torch-cuda", "harness.runtimes.torch_cuda:TorchCudaRunner")
RUNTIMES.register("torch-cuda-compile", "harness.runtimes.torch_cuda:TorchCompileCudaRunner")
RUNTIMES.register("torch-cuda-graphs", "harness.runtimes.torch_cuda:TorchCudaGraphsRunner")
RUNTIMES.register("torch-kernels", "harness.runtimes.torch_kernels:TorchKernelsRunner")
