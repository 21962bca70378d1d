"""torch on an NVIDIA GPU: the saved ``torch.export`` program, eager, through ``torch.compile``, or as CUDA graphs.

The program is moved to ``cuda:0`` and run on a dedicated stream. Every query records
four CUDA events (H2D start, compute start, compute end, D2H end) and the host time of
launching the compute, as trtexec splits a query; ``last_timing_ms`` holds them for the
scenario to collect (:mod:`harness.measure.gpu_timing` turns them into medians and
warnings), and ``last_device_ms`` is the compute part. Inputs and outputs go through
pinned host buffers so the copies are real asynchronous DMA, not pageable staging.

``torch-cuda-graphs`` captures the forward pass once per input shape and replays it,
removing per-kernel launch cost (trtexec's ``--useCudaGraph``). ``pipelined_throughput``
keeps two queries in flight (trtexec enqueues one ahead) for a separate throughput figure.
On a CPU build of torch, or without a visible GPU, activation raises :class:`DeviceUnavailable`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import DeviceUnavailable
from harness.runtimes.base import Runner, RunnerCapabilities, torch_cuda_reason

PIPELINE_DEPTH = 2
GRAPH_WARMUP_RUNS = 3  # eager runs on a side stream before capture, as torch.cuda.graphs requires


class TorchCudaRunner(Runner):
    name = "torch-cuda"
    artifact_format = "torch.export"
    description = "torch eager on cuda:0 running the saved torch.export program, inference_mode, own stream"
    device_kind = "cuda"
    capabilities = RunnerCapabilities(gpu_timing=True, pipelined_throughput=True, peak_gpu_memory=True)
    requires = (("torch", "build"),)
    compile = False

    def __init__(self, artifact: Path, *, threads: int | None = None, torch_module: Any = None,
                 device: str = "cuda:0") -> None:
        super().__init__(artifact, threads=threads)
        self._torch = torch_module
        self.device = device
        self.last_device_ms: float | None = None  # CUDA-event time of the last forward pass
        self.last_timing_ms: dict[str, float] | None = None  # enqueue / h2d / compute / d2h of the last query

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return torch_cuda_reason()

    def activate_impl(self) -> None:
        from harness.export.pt2 import load_program

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
        module = load_program(self.artifact).module().to(self.device)
        self._module = torch.compile(module) if self.compile else module
        self._stream = torch.cuda.Stream(device=self.device)
        self._slots: dict[tuple[tuple[int, ...], int], dict[str, Any]] = {}
        torch.cuda.reset_peak_memory_stats(self.device)

    def _slot(self, shape: tuple[int, ...], index: int = 0) -> dict[str, Any]:
        """Pinned host buffers, events and (with CUDA graphs) a captured graph for one input shape."""
        key = (shape, index)
        if key not in self._slots:
            torch = self._torch
            slot: dict[str, Any] = {
                "host_in": torch.empty(shape, dtype=torch.float32, pin_memory=True),
                "dev_in": torch.empty(shape, dtype=torch.float32, device=self.device),
                "events": [torch.cuda.Event(enable_timing=True) for _ in range(4)],
            }
            if self.capabilities.cuda_graphs:
                side = torch.cuda.Stream(device=self.device)
                side.wait_stream(torch.cuda.current_stream(self.device))
                with torch.inference_mode(), torch.cuda.stream(side):
                    for _ in range(GRAPH_WARMUP_RUNS):
                        self._module(slot["dev_in"])
                torch.cuda.current_stream(self.device).wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.inference_mode(), torch.cuda.graph(graph):
                    slot["dev_out"] = self._module(slot["dev_in"])
                slot["graph"] = graph
            self._slots[key] = slot
        return self._slots[key]

    def _launch(self, slot: dict[str, Any], x: np.ndarray) -> float:
        """Enqueue H2D, compute and D2H of one query on the stream; returns the host enqueue time (s)."""
        torch = self._torch
        h2d0, c0, c1, d2h1 = slot["events"]
        slot["host_in"].numpy()[...] = x
        with torch.inference_mode(), torch.cuda.stream(self._stream):
            h2d0.record(self._stream)
            slot["dev_in"].copy_(slot["host_in"], non_blocking=True)
            c0.record(self._stream)
            t0 = time.perf_counter()
            if self.capabilities.cuda_graphs:
                slot["graph"].replay()
                y = slot["dev_out"]
            else:
                y = self._module(slot["dev_in"])
            enqueue_s = time.perf_counter() - t0
            c1.record(self._stream)
            if "host_out" not in slot or slot["host_out"].shape != y.shape:
                slot["host_out"] = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)
            slot["host_out"].copy_(y, non_blocking=True)
            d2h1.record(self._stream)
        return enqueue_s

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        slot = self._slot(tuple(x.shape))
        enqueue_s = self._launch(slot, x)
        h2d0, c0, c1, d2h1 = slot["events"]
        d2h1.synchronize()
        self.last_timing_ms = timing_from_events(enqueue_s, h2d0, c0, c1, d2h1)
        self.last_device_ms = self.last_timing_ms["compute_ms"]
        return slot["host_out"].numpy().copy()

    def pipelined_throughput(self, x: np.ndarray, rule: Any, depth: int = PIPELINE_DEPTH):
        """Queries finished with ``depth`` in flight, over at least the rule's count and time floors."""
        from harness.measure.gpu_timing import Pipelined

        slots = [self._slot(tuple(x.shape), i) for i in range(depth)]
        n_min, t_min = max(rule.min_samples, 10), rule.min_duration_s
        done = 0
        start = time.perf_counter()
        for i in range(depth):
            self._launch(slots[i], x)
        while True:
            slot = slots[done % depth]
            slot["events"][3].synchronize()
            done += 1
            if done >= n_min and time.perf_counter() - start >= t_min:
                break
            self._launch(slot, x)
        for k in range(done, done + depth - 1):  # drain what is still in flight
            slots[k % depth]["events"][3].synchronize()
        return Pipelined(n_queries=done, wall_s=time.perf_counter() - start, depth=depth)

    def peak_gpu_mb(self) -> float:
        """Peak bytes held by torch's CUDA caching allocator (not the CUDA context or other libraries)."""
        return self._torch.cuda.max_memory_allocated(self.device) / 2**20

    def deactivate_impl(self) -> None:
        self._module = None
        self._stream = None
        self._slots = {}


def timing_from_events(enqueue_s: float, h2d0: Any, c0: Any, c1: Any, d2h1: Any) -> dict[str, float]:
    """trtexec's split of one query from its four CUDA events (``elapsed_time`` is in ms)."""
    return {
        "enqueue_ms": enqueue_s * 1e3,
        "h2d_ms": float(h2d0.elapsed_time(c0)),
        "compute_ms": float(c0.elapsed_time(c1)),
        "d2h_ms": float(c1.elapsed_time(d2h1)),
    }


class TorchCompileCudaRunner(TorchCudaRunner):
    name = "torch-cuda-compile"
    description = "torch.compile (inductor, default mode) on cuda:0 of the saved torch.export program, own stream"
    compile = True


class TorchCudaGraphsRunner(TorchCudaRunner):
    name = "torch-cuda-graphs"
    description = "torch eager on cuda:0, the forward pass captured once per input shape as a CUDA graph and replayed"
    capabilities = RunnerCapabilities(gpu_timing=True, pipelined_throughput=True, cuda_graphs=True, peak_gpu_memory=True)
