"""The project's own int8 / 2:4 Triton kernels (``kernels/``) inside PyTorch, on an NVIDIA GPU.

Loads the same ``torch.export`` program as the ``torch`` runtime, lifts its conv / linear ops
into modules (batch norm folded, ReLU fused into the GEMM epilogue), swaps them for the kernels'
modules and runs the rest of the graph in fp16. Every layer becomes int8 (weights per output
channel); a layer whose weight is already 2:4 sparse along its reduction dim becomes 2:4 + int8.
No calibration data reaches a runner, so activations are quantized per tensor with each batch's
own absmax (dynamic quantization): accuracy is measured on exactly that.

This runtime exists to measure GPU kernels: without CUDA it refuses at activation (exit code 4)
rather than fall back to the slow plain-torch reference path. Like ``torch-cuda`` it runs on its
own stream and records the CUDA-event time of the last forward pass (``last_device_ms``); it does
not time itself otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.deps import require
from harness.errors import DeviceUnavailable
from harness.runtimes.base import Runner, missing_modules_reason, torch_cuda_reason

NO_CUDA = (
    "torch-kernels runs the project's Triton int8 / 2:4 kernels on an NVIDIA GPU, "
    "and torch sees no CUDA device ({build})"
)
NO_CUDA_HINT = "use the 'torch' or 'onnxruntime' runtime on this machine, or run on an NVIDIA GPU"


class TorchKernelsRunner(Runner):
    name = "torch-kernels"
    artifact_format = "torch.export"
    description = (
        "the project's Triton kernels (kernels/) on cuda:0: the torch.export program with conv/linear lifted "
        "(BN folded, ReLU fused) and swapped to int8, 2:4+int8 where a weight is already 2:4; activations "
        "quantized per batch; fp16 elsewhere; CUDA only"
    )
    device_kind = "cuda"
    requires = (("torch", "build"),)  # triton (the kernels extra) only for the Triton backend

    def __init__(self, artifact: Path, *, threads: int | None = None, mode: str = "2:4+int8",
                 backend: str = "auto", torch_module: Any = None, device: str = "cuda:0") -> None:
        super().__init__(artifact, threads=threads)
        self.mode = mode
        self.backend = backend
        self.device = device
        self._torch = torch_module
        self.swap_report = None  # harness.kernels.swap.SwapReport once active: what each layer became
        self.last_device_ms: float | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return torch_cuda_reason() or missing_modules_reason("triton")

    def activate_impl(self) -> None:
        torch = self._torch
        if torch is None:
            import torch
        if not torch.cuda.is_available():
            build = "a CPU-only build of torch" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise DeviceUnavailable(NO_CUDA.format(build=build), hint=NO_CUDA_HINT)
        if self.backend in ("auto", "triton"):
            require("triton", "kernels", "the torch-kernels runtime's Triton kernels")
        from harness.kernels.graph import load_swapped_program

        if self.threads:
            torch.set_num_threads(self.threads)
        self._torch = torch
        self._module, self.swap_report = load_swapped_program(
            self.artifact, self.mode, backend=self.backend, device=self.device, dtype=torch.float16
        )
        self._stream = torch.cuda.Stream(device=self.device)
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode(), torch.cuda.stream(self._stream):
            batch = torch.from_numpy(x).to(self.device, torch.float16)
            self._start.record(self._stream)
            y = self._module(batch)
            self._end.record(self._stream)
            out = y.float().cpu()  # waits for the stream
        self._end.synchronize()
        self.last_device_ms = float(self._start.elapsed_time(self._end))
        return out.numpy()

    def deactivate_impl(self) -> None:
        self._module = None
        self._stream = None
