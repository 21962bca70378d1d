"""Memory figures beyond RSS: computed sparse-weight size, NVML per-process memory (fake NVML), unified-memory delta."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.measure.memory import (
    NVML_VALUE_NOT_AVAILABLE,
    MemoryProbe,
    bitmask_values_bytes,
    nvml_process_gpu_mb,
    sparse_weights_mb,
)
from harness.records import MemoryStats


def write_onnx(path: Path, weights: dict[str, np.ndarray]) -> Path:
    import onnx
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(w, name) for name, w in weights.items()]
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])], initializer=inits)
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_bitmask_plus_values_by_hand():
    w = np.zeros(64, np.float32)
    w[:16] = 1.0  # 75 % zeros: 8 bytes of mask + 16 x 4 bytes of values
    assert bitmask_values_bytes(w) == 8 + 64
    assert bitmask_values_bytes(np.ones(64, np.float32)) == 256  # dense is smaller than mask + all values
    assert bitmask_values_bytes(np.zeros(10, np.int8)) == 2  # ceil(10 / 8)


def test_sparse_weights_of_an_onnx_file(tmp_path):
    half = np.ones((32, 32), np.float32)
    half[:, ::2] = 0
    path = write_onnx(tmp_path / "m.onnx", {"w": half, "b": np.ones(32, np.float32)})
    mb, reason = sparse_weights_mb(path, "onnx")
    assert reason is None and mb * 2**20 == (1024 // 8 + 512 * 4) + 32 * 4
    assert sparse_weights_mb(tmp_path / "m.engine", "tensorrt-engine")[1].startswith("the sparse size is computed")
    assert "could not be read" in sparse_weights_mb(tmp_path / "absent.onnx", "onnx")[1]


class FakeProcNvml:
    """nvmlDeviceGetComputeRunningProcesses over a fixed process table."""

    class NVMLError(Exception):
        pass

    def __init__(self, processes):
        self.processes = processes

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        if isinstance(self.processes, Exception):
            raise self.processes
        return self.processes


def proc(pid, used):
    return SimpleNamespace(pid=pid, usedGpuMemory=used)


def test_nvml_per_process_memory_for_this_pid_only():
    nvml = FakeProcNvml([proc(7, 900 * 2**20), proc(42, 300 * 2**20), proc(42, 12 * 2**20)])
    assert nvml_process_gpu_mb(nvml, 42) == (312.0, None)
    value, reason = nvml_process_gpu_mb(nvml, 5)
    assert value is None and "not among NVML's 3 compute process(es)" in reason and "container" in reason
    assert "usedGpuMemory not available" in nvml_process_gpu_mb(FakeProcNvml([proc(5, NVML_VALUE_NOT_AVAILABLE)]), 5)[1]
    assert "could not list" in nvml_process_gpu_mb(FakeProcNvml(FakeProcNvml.NVMLError("No Permission")), 5)[1]
    assert "not in use" in nvml_process_gpu_mb(None)[1]


def write_meminfo(root: Path, available_kb: int, nvmap: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = ["MemTotal:        7999000 kB", f"MemAvailable:    {available_kb} kB"]
    (root / "meminfo").write_text("\n".join(lines + (["NvMapMemUsed:     123456 kB"] if nvmap else [])) + "\n")
    return root


def test_unified_memory_delta_from_memavailable(tmp_path):
    proc_root = write_meminfo(tmp_path / "proc", 6_000_000, nvmap=True)  # a Jetson kernel: unified found
    probe = MemoryProbe(nvml=FakeProcNvml([proc(1, 2**20), proc(2, 50 * 2**20)]), proc_root=proc_root, pid=2)
    probe.before_load()
    for kb in (5_488_000, 5_400_000, 5_450_000):  # after load, then after each batch
        write_meminfo(proc_root, kb, nvmap=True)
        probe.sample()
    values, reasons = probe.result()
    assert values == {"process_gpu_mb": 50.0, "system_memory_delta_mb": 600_000 / 1024}
    assert reasons == {}
    MemoryStats(artifact_mb=1.0, peak_rss_mb=None, **values, unavailable_reasons=reasons)


def test_no_unified_memory_and_no_nvml_are_reasons(tmp_path):
    probe = MemoryProbe(proc_root=write_meminfo(tmp_path / "proc", 1000))
    probe.before_load()
    probe.sample()
    values, reasons = probe.result()
    assert values == {"process_gpu_mb": None, "system_memory_delta_mb": None}
    assert "not a unified-memory device" in reasons["system_memory_delta_mb"] and "NVML" in reasons["process_gpu_mb"]
    told = MemoryProbe(unified=True, proc_root=tmp_path / "none")
    told.before_load()
    told.sample()
    assert "no MemAvailable" in told.result()[1]["system_memory_delta_mb"]


@pytest.mark.gpu
def test_real_nvml_sees_this_process_after_a_cuda_allocation():
    import pynvml
    import torch

    x = torch.ones(1024, 1024, device="cuda")
    value, reason = nvml_process_gpu_mb(pynvml, None, torch.cuda.current_device())
    assert (value is not None and value > 0) or "container" in reason
    del x
