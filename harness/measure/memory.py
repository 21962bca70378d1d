"""Memory figures beyond RSS: sparse-weight size, NVML per-process GPU memory, unified-memory delta.

* ``sparse_weights_mb`` is computed, not a file that exists: the bytes the ONNX initializers
  would need in a bitmask + values format (one bit per element saying "non-zero", then the
  non-zero values at the tensor's own dtype), each tensor kept dense where that is smaller.
  Bitmask + values rather than CSR because it is the smaller of the two at the sparsities
  pruning gives (CSR spends a 32-bit column index per non-zero: it wins only above ~97 %
  zeros for fp32) and needs no choice of which axis is a "row" for 4-D convolution weights.
* ``process_gpu_mb``: NVML's ``usedGpuMemory`` of this process's entries in
  ``nvmlDeviceGetComputeRunningProcesses``, read after the runtime loaded and after each batch
  size; the largest reading, not a polled peak. Inside a container NVML lists host PIDs, so
  this process is not found and the figure is None with that reason.
* ``system_memory_delta_mb`` (unified-memory devices: Jetson): ``MemAvailable`` from
  ``/proc/meminfo`` before the runtime loads minus its lowest reading after loading and after
  each batch size. Machine-wide: other processes' allocations count too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

SPARSE_FORMAT = "bitmask+values"
#: NVML's "value not available" for usedGpuMemory (NVML_VALUE_NOT_AVAILABLE, unsigned long long -1)
NVML_VALUE_NOT_AVAILABLE = 2**64 - 1


def bitmask_values_bytes(values: np.ndarray) -> int:
    """Bytes of one tensor as a bitmask (1 bit per element) plus its non-zero values, or dense if smaller."""
    dense = values.size * values.itemsize
    sparse = -(-values.size // 8) + int(np.count_nonzero(values)) * values.itemsize
    return min(dense, sparse)


def sparse_weights_mb(path: Path, fmt: str) -> tuple[float | None, str | None]:
    """MiB the ONNX initializers would take stored as :data:`SPARSE_FORMAT`, or ``(None, reason)``."""
    from harness.export.formats import is_onnx

    if not is_onnx(fmt, Path(path)):
        return None, f"the sparse size is computed from ONNX initializers; {fmt} artifacts are not read"
    try:
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(path), load_external_data=False)
        if any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer):
            return None, f"{Path(path).name} keeps its weights in external data files; they are not read"
        total = sum(bitmask_values_bytes(numpy_helper.to_array(init)) for init in model.graph.initializer)
    except Exception as exc:  # a reading failure leaves the figure out, never the measurement
        return None, f"initializers of {Path(path).name} could not be read: {exc}"
    return total / 2**20, None


def nvml_process_gpu_mb(nvml: Any, pid: int | None = None, device_index: int = 0) -> tuple[float | None, str | None]:
    """GPU memory NVML attributes to ``pid`` (this process) on one device, in MiB, or ``(None, reason)``."""
    if nvml is None:
        return None, "NVML is not in use (not a GPU runtime, or nvidia-ml-py is not installed)"
    pid = os.getpid() if pid is None else pid
    try:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByIndex(device_index)
        processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except nvml.NVMLError as exc:
        return None, f"NVML could not list compute processes: {exc}"
    mine = [p for p in processes if p.pid == pid]
    if not mine:
        return None, (f"process {pid} is not among NVML's {len(processes)} compute process(es) on GPU "
                      f"{device_index} (inside a container NVML lists host PIDs)")
    used = [p.usedGpuMemory for p in mine]
    if any(u is None or u == NVML_VALUE_NOT_AVAILABLE for u in used):
        return None, "NVML reports no per-process memory here (usedGpuMemory not available: WDDM, vGPU or MIG)"
    return sum(used) / 2**20, None


def meminfo_kb(key: str, proc_root: Path = Path("/proc")) -> int | None:
    """One ``kB`` line of ``/proc/meminfo``, or None."""
    try:
        for line in (Path(proc_root) / "meminfo").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class MemoryProbe:
    """Readings taken before the runtime loads and then after loading and after each batch size."""

    def __init__(self, *, nvml: Any = None, unified: bool = False, proc_root: Path = Path("/proc"),
                 pid: int | None = None, device_index: int = 0) -> None:
        self.nvml, self.proc_root, self.pid, self.device_index = nvml, Path(proc_root), pid, device_index
        self.unified = unified or meminfo_kb("NvMapMemUsed", self.proc_root) is not None  # a Jetson kernel
        self.available_before_kb: int | None = None
        self.available_kb: list[int] = []
        self.gpu_mb: list[float] = []
        self.gpu_reason: str | None = None

    def before_load(self) -> None:
        self.available_before_kb = meminfo_kb("MemAvailable", self.proc_root)

    def sample(self) -> None:
        if (kb := meminfo_kb("MemAvailable", self.proc_root)) is not None:
            self.available_kb.append(kb)
        if self.nvml is not None or self.gpu_reason is None:
            mb, why = nvml_process_gpu_mb(self.nvml, self.pid, self.device_index)
            if mb is not None:
                self.gpu_mb.append(mb)
            else:
                self.gpu_reason = why

    def result(self) -> tuple[dict[str, float | None], dict[str, str]]:
        """``{process_gpu_mb, system_memory_delta_mb}`` and the reasons for those that are None."""
        values: dict[str, float | None] = {"process_gpu_mb": max(self.gpu_mb) if self.gpu_mb else None}
        reasons: dict[str, str] = {}
        if values["process_gpu_mb"] is None:
            reasons["process_gpu_mb"] = self.gpu_reason or "never read"
        if not self.unified:
            values["system_memory_delta_mb"] = None
            reasons["system_memory_delta_mb"] = (
                "not a unified-memory device: the process's own memory is peak_rss_mb (and GPU memory process_gpu_mb)")
        elif self.available_before_kb is None or not self.available_kb:
            values["system_memory_delta_mb"] = None
            reasons["system_memory_delta_mb"] = f"no MemAvailable line in {self.proc_root / 'meminfo'}"
        else:
            values["system_memory_delta_mb"] = (self.available_before_kb - min(self.available_kb)) / 1024.0
        return values, reasons
