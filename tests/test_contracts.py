"""The written contracts: a runtime, a meter and an artifact format are each one class (or row) plus one line.

A fake runtime and a fake meter, defined here, are registered for one test each and driven
through the same code the real ones go through: the measuring worker (inline) and meter
detection / the "auto" choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from harness.export.formats import FORMATS, ArtifactFormat, is_onnx
from harness.measure.gpu_timing import Pipelined
from harness.measure.launch import measure
from harness.measure.worker import MeasureRequest
from harness.meters import METERS, auto_order, choose_meter, detect_meters, rail_meters
from harness.meters.base import EnergyMeter, MeterProbe
from harness.runtimes import RUNTIMES, Runner, RunnerCapabilities, runtime_availability

RULE = {"warmup_runs": 2, "warmup_s": 0.0, "min_samples": 30, "min_duration_s": 0.0, "max_duration_s": 5.0,
        "window_tolerance": 10.0, "max_robust_cv": None}
FAKE_ACTIVATION_MB = 0.5
FAKE_TIMING_MS = {"enqueue_ms": 0.01, "h2d_ms": 0.02, "compute_ms": 0.1, "d2h_ms": 0.03}


def npy_weights_mb(path: Path) -> float:
    return np.load(path).nbytes / 2**20


class FakeLinearRunner(Runner):
    """Logits = flattened images @ a weight matrix saved as .npy; declares every optional capability a
    CPU runner can fake, so the worker's use of each one shows in the result."""

    name = "fake-linear"
    artifact_format = "fake-npy"
    description = "numpy matmul over a .npy weight matrix (tests)"
    device_kind = "cpu"
    capabilities = RunnerCapabilities(gpu_timing=True, pipelined_throughput=True, activation_memory=True)

    def activate_impl(self) -> None:
        self._w = np.load(self.artifact)

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        self.last_timing_ms = dict(FAKE_TIMING_MS)
        return x.reshape(len(x), -1) @ self._w

    def pipelined_throughput(self, x: np.ndarray, rule) -> Pipelined:
        return Pipelined(n_queries=20, wall_s=0.01, depth=2)

    def activation_memory(self) -> tuple[float | None, str | None]:
        return FAKE_ACTIVATION_MB, None


class FakeWallMeter(EnergyMeter):
    """A wall meter whose probe looks for a ``fake-wall`` file under the injected sysfs root."""

    name = "fake-wall"
    scope = "wall"
    source = "fake-wall-counter"
    auto_rank = 25  # after the Jetson module rails (20), before tegrastats (30) and RAPL (50)

    @classmethod
    def detect(cls, probe: MeterProbe, found: Mapping[str, EnergyMeter]) -> EnergyMeter | str:
        if not (Path(probe.sysfs_root) / "fake-wall").exists():
            return f"no fake-wall file under {probe.sysfs_root}"
        return cls(clock=probe.clock)

    def _read_counters_j(self) -> dict[str, float]:
        return {"wall": self._clock() * 10.0}


@pytest.fixture
def fake_runtime():
    FORMATS.add(ArtifactFormat("fake-npy", "model.npy", weights_reader=f"{__name__}:npy_weights_mb"))
    try:
        with RUNTIMES.temporarily("fake-linear", f"{__name__}:FakeLinearRunner"):
            yield
    finally:
        FORMATS.remove("fake-npy")
    assert "fake-linear" not in RUNTIMES and "fake-npy" not in FORMATS


@pytest.fixture
def fake_meter():
    with METERS.temporarily("fake-wall", f"{__name__}:FakeWallMeter"):
        yield
    assert "fake-wall" not in METERS


def test_a_registered_fake_runtime_is_measured_by_the_worker_through_its_declared_capabilities(fake_runtime, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    w = rng.standard_normal((16, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "model.npy", w)
    np.save(tmp_path / "ref.npy", x.reshape(2, -1) @ w)
    request = MeasureRequest("fake-linear", str(tmp_path / "model.npy"), str(tmp_path / "x.npy"), [1, 4], RULE, 1,
                             "test", reference_logits_npy=str(tmp_path / "ref.npy"), energy_meter="null",
                             sysfs_root=str(tmp_path / "sys"))
    result = measure(request, "inline")
    assert [b["latency"]["batch_size"] for b in result["batches"]] == [1, 4]
    for b in result["batches"]:
        assert b["latency"]["output_check_argmax_agreement"] == 1.0
        assert b["latency"]["n_samples"] >= 30 and "switched off" in b["energy"]["unavailable_reason"]
        g = b["gpu_timing"]  # capabilities.gpu_timing: last_timing_ms collected after every timed query
        assert g["n_queries"] >= b["latency"]["n_samples"] and g["compute_ms"] == pytest.approx(0.1)
        assert g["pipelined_throughput_sps"] == pytest.approx(b["latency"]["batch_size"] * 20 / 0.01)
        assert not g["cuda_graphs"]
    memory = result["memory"]
    assert memory["activation_mb"] == FAKE_ACTIVATION_MB and memory["peak_gpu_mb"] is None
    assert memory["weights_mb"] == pytest.approx(w.nbytes / 2**20)  # through the fake-npy format's reader
    assert "ONNX initializers" in memory["unavailable_reasons"]["sparse_weights_mb"]
    assert runtime_availability(["fake-linear"]) == {"fake-linear": None}


def test_a_registered_fake_meter_is_detected_and_chosen_by_auto_per_its_rank(fake_meter, tmp_path):
    rapl = tmp_path / "class/powercap/intel-rapl:0"
    rapl.mkdir(parents=True)
    for name, value in [("name", "package-0"), ("energy_uj", "1000"), ("max_energy_range_uj", "262143328850")]:
        (rapl / name).write_text(f"{value}\n")

    def detect():
        return detect_meters(sysfs_root=tmp_path, model_file=tmp_path / "model", probe_nvml=False,
                             tegrastats_command=None)

    assert auto_order(on_gpu=False) == ["external", "jetson", "fake-wall", "tegrastats", "rapl"]
    meters = detect()
    assert list(meters) == ["rapl", "nvml", "jetson", "tegrastats", "external", "fake-wall"]
    assert not meters["fake-wall"].available and "no fake-wall file" in meters["fake-wall"].reason
    assert choose_meter(meters, "auto").name == "rapl"  # its probe said unavailable

    (tmp_path / "fake-wall").write_text("")
    meters = detect()
    assert isinstance(meters["fake-wall"], FakeWallMeter) and meters["fake-wall"].available
    assert choose_meter(meters, "auto").name == "fake-wall"  # rank 25 beats RAPL's 50
    assert choose_meter(detect(), "fake-wall").name == "fake-wall"

    hwmon = tmp_path / "bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"  # a Jetson module rail: rank 20
    hwmon.mkdir(parents=True)
    for name, value in [("in1_label", "VDD_IN"), ("in1_input", 5000), ("curr1_input", 1000)]:
        (hwmon / name).write_text(f"{value}\n")
    (tmp_path / "model").write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    chosen = choose_meter(detect(), "auto")
    try:
        assert chosen.name == "jetson"
    finally:
        chosen.close()


def test_the_auto_orders_and_rail_meters_come_from_the_meter_classes():
    assert auto_order(on_gpu=False) == ["external", "jetson", "tegrastats", "rapl"]
    assert auto_order(on_gpu=True) == ["external", "jetson", "tegrastats", "nvml", "rapl"]
    assert rail_meters() == ["jetson", "tegrastats"]


def test_every_runner_declares_a_known_format_and_device_and_the_gpu_ones_are_the_cuda_ones():
    for name in RUNTIMES.names():
        cls = RUNTIMES.get(name)
        assert cls.name == name and cls.artifact_format in FORMATS
        on_gpu = any(marker in name for marker in ("cuda", "tensorrt", "kernels"))  # the registered names' meaning
        assert cls.device_kind == ("cuda" if on_gpu else "cpu"), name
        reason = cls.unavailable_reason()
        assert reason is None or (isinstance(reason, str) and "\n" not in reason)
    assert RUNTIMES.get("tensorrt").capabilities == RunnerCapabilities(activation_memory=True)
    assert RUNTIMES.get("torch-cuda-graphs").capabilities.cuda_graphs
    assert RUNTIMES.get("onnxruntime").capabilities == RunnerCapabilities()


def test_a_declared_capability_without_its_method_is_refused_at_class_definition():
    with pytest.raises(TypeError, match="pipelined_throughput"):
        class Broken(Runner):  # noqa: F841
            name = "broken"
            artifact_format = "onnx"
            capabilities = RunnerCapabilities(pipelined_throughput=True)
    with pytest.raises(TypeError, match="device_kind"):
        class Elsewhere(Runner):  # noqa: F841
            name = "elsewhere"
            artifact_format = "onnx"
            device_kind = "tpu"


def test_the_format_table_gives_the_cache_file_names_and_onnx_family():
    from harness.artifacts import FORMAT_FILES

    assert FORMAT_FILES == {"torch.export": "model.pt2", "onnx": "model.onnx", "onnx-trt-qdq": "model.trt-qdq.onnx"}
    assert [f.name for f in FORMATS if f.onnx_family] == ["onnx", "onnx-trt-qdq"]
    assert is_onnx("onnx-trt-qdq") and not is_onnx("torch.export") and is_onnx("anything", Path("m.onnx"))
    assert FORMATS["tensorrt-engine"].file_name is None and FORMATS["tensorrt-engine"].built_on_device
    with pytest.raises(Exception, match="unknown artifact format 'nope'"):
        FORMATS["nope"]


def test_inspect_artifact_reads_each_format_with_its_inspector(tiny_onnx):
    from harness.export.formats import inspect_artifact
    from harness.export.inspect import inspect_onnx, inspect_program

    assert inspect_artifact(tiny_onnx, "onnx") == inspect_onnx(tiny_onnx)
    program = tiny_onnx.with_name("model.pt2")
    assert inspect_artifact(program, "torch.export") == inspect_program(program)
    assert inspect_artifact(tiny_onnx, "onnx-trt-qdq").format == "onnx-trt-qdq"
