"""torch on an NVIDIA GPU: the saved ``torch.export`` program, eager or through ``torch.compile``.

The program is moved to ``cuda:0`` and run on a dedicated stream; CUDA events around the
forward pass give the device time of the last call (``last_device_ms``), which a scenario
may read next to its own host clock. The runner does not time itself otherwise. On a CPU
build of torch, or without a visible GPU, activation raises :class:`DeviceUnavailable`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import DeviceUnavailable
from harness.runtimes.base import Runner


class TorchCudaRunner(Runner):
    name = "torch-cuda"
    artifact_format = "torch.export"
    description = "torch eager on cuda:0 running the saved torch.export program, inference_mode, own stream"
    compile = False

    def __init__(self, artifact: Path, *, threads: int | None = None, torch_module: Any = None,
                 device: str = "cuda:0") -> None:
        super().__init__(artifact, threads=threads)
        self._torch = torch_module
        self.device = device
        self.last_device_ms: float | None = None  # CUDA-event time of the last forward pass

    def activate_impl(self) -> None:
        torch = self._torch
        if torch is None:
            import torch
        if not torch.cuda.is_available():
            build = f"a CPU-only build ({torch.__version__})" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise DeviceUnavailable(f"{self.name}: torch sees no CUDA device ({build})",
                                    hint="install a CUDA build of torch on a machine with an NVIDIA GPU")
        if self.threads:
            torch.set_num_threads(self.threads)
        self._torch = torch
        module = torch.export.load(str(self.artifact)).module().to(self.device)
        self._module = torch.compile(module) if self.compile else module
        self._stream = torch.cuda.Stream(device=self.device)
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode(), torch.cuda.stream(self._stream):
            batch = torch.from_numpy(x).to(self.device)
            self._start.record(self._stream)
            y = self._module(batch)
            self._end.record(self._stream)
            out = y.cpu()  # waits for the stream
        self._end.synchronize()
        self.last_device_ms = float(self._start.elapsed_time(self._end))
        return out.numpy()

    def deactivate_impl(self) -> None:
        self._module = None
        self._stream = None


class TorchCompileCudaRunner(TorchCudaRunner):
    name = "torch-cuda-compile"
    description = "torch.compile (inductor, default mode) on cuda:0 of the saved torch.export program, own stream"
    compile = True
