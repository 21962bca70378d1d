"""The NVML meter against a fake pynvml module: counter mode, power fallback, failures."""

from __future__ import annotations

import sys

import pytest

import harness.meters.nvml as nvml_module
from harness.errors import MeasurementError
from harness.meters.nvml import NOT_INSTALLED, NvmlMeter
from tests.fakes import FakeClock


class FakeNVMLError(Exception):
    pass


class FakeNVMLErrorNotSupported(FakeNVMLError):
    pass


class FakePynvml:
    """The part of pynvml the meter uses; integers in NVML's units (mJ, mW)."""

    NVMLError = FakeNVMLError
    NVMLError_NotSupported = FakeNVMLErrorNotSupported
    NVML_DEVICE_ARCH_VOLTA, NVML_DEVICE_ARCH_AMPERE, NVML_DEVICE_ARCH_PASCAL = 5, 7, 4

    def __init__(self, *, n_gpus: int = 1, energy_counter: bool = True, arch: int = 9,
                 init_error: str | None = None) -> None:
        self.n_gpus, self.energy_counter, self.arch, self.init_error = n_gpus, energy_counter, arch, init_error
        self.energy_mj, self.power_mw = 1_000_000, 250_000
        self.handles_asked: list[int] = []
        self.init_calls = self.shutdown_calls = 0

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error:
            raise FakeNVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> tuple[str, int]:
        self.handles_asked.append(index)
        if index >= self.n_gpus:
            raise FakeNVMLError("Invalid Argument")
        return ("handle", index)

    def nvmlDeviceGetName(self, handle: tuple[str, int]) -> str:
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: tuple[str, int]) -> int:
        if not self.energy_counter:
            raise FakeNVMLErrorNotSupported("Not Supported")
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: tuple[str, int]) -> int:
        return self.power_mw

    def nvmlDeviceGetArchitecture(self, handle: tuple[str, int]) -> int:
        return self.arch


def test_counter_mode_window_is_millijoule_counter_difference_in_joules() -> None:
    fake, clock = FakePynvml(), FakeClock()
    meter = NvmlMeter(0, fake, clock=clock)
    meter.begin_window("run")
    fake.energy_mj += 12_345
    clock.advance(20.0)
    window = meter.end_window("run")
    assert meter.available and meter.uses_counter and meter.device_name == "NVIDIA H100 80GB HBM3"
    assert window.energy_j == {"gpu0": pytest.approx(12.345)}
    assert window.total_energy_j == pytest.approx(12.345)
    assert (window.scope, window.source, window.sample_period_s) == ("gpu-board", "nvml-energy-counter", None)
    assert window.warnings == [] and not meter.sampler.running


def test_counter_that_did_not_move_in_a_short_window_warns_of_the_zero_energy_trap() -> None:
    clock = FakeClock()
    meter = NvmlMeter(0, FakePynvml(), clock=clock)
    meter.begin_window("run")
    clock.advance(0.05)
    window = meter.end_window("run")
    assert window.total_energy_j == 0.0
    assert window.warnings[0].startswith("window of 0.05 s is shorter than the 10.0 s minimum")
    assert window.warnings[1].startswith("window of 0.05 s is shorter than one 0.1 s update of the nvml sensor")
    assert "energy counter did not change" in window.warnings[2]


def test_energy_counter_not_supported_falls_back_to_integrating_power() -> None:
    fake, clock = FakePynvml(energy_counter=False, arch=4), FakeClock()
    meter = NvmlMeter(0, fake, clock=clock, autostart=False)
    meter.begin_window("run")  # edge reading: 250 W
    for power_w in (250, 350, 350):
        clock.advance(1.0)
        fake.power_mw = power_w * 1000
        meter.sampler.sample_once()
    clock.advance(1.0)
    window = meter.end_window("run")  # edge reading: 350 W
    # 250, 250, 350, 350, 350 W at 0..4 s: 250 + 300 + 350 + 350 J
    assert window.total_energy_j == pytest.approx(1250.0)
    assert (meter.uses_counter, window.source, window.sample_period_s) == (False, "nvml-power-integration", 0.1)
    assert meter.counter_unavailable_reason == "Not Supported"
    assert meter.sensor_period_s == pytest.approx(0.1)  # Pascal: instantaneous power


def test_power_fallback_on_ampere_or_newer_assumes_one_second_averaging() -> None:
    meter = NvmlMeter(0, FakePynvml(energy_counter=False, arch=7), autostart=False)
    assert meter.sensor_period_s == 1.0 and meter.required_window_s == 100.0


def test_init_failure_makes_meter_unavailable_with_nvml_reason_and_never_raises() -> None:
    meter = NvmlMeter(0, FakePynvml(init_error="NVML Shared Library Not Found"))
    assert not meter.available
    assert meter.reason is not None and "NVML Shared Library Not Found" in meter.reason
    meter.begin_window("run")
    window = meter.end_window("run")
    assert (window.energy_j, window.total_energy_j, window.warnings) == ({}, None, [])


def test_missing_device_index_is_unavailable_and_shuts_nvml_down() -> None:
    fake = FakePynvml(n_gpus=1)
    meter = NvmlMeter(3, fake)
    assert not meter.available and "no GPU at index 3" in (meter.reason or "")
    assert (fake.init_calls, fake.shutdown_calls) == (1, 1)


def test_missing_pynvml_package_is_unavailable_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvml_module, "pynvml", None)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    meter = NvmlMeter()
    assert (meter.available, meter.reason) == (False, NOT_INSTALLED)


def test_module_level_pynvml_is_the_single_patch_point(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePynvml()
    monkeypatch.setattr(nvml_module, "pynvml", fake)
    meter = NvmlMeter()
    assert meter.available and fake.init_calls == 1


@pytest.mark.parametrize("visible", [None, "", "1", "GPU-8f1c2a"])
def test_device_index_is_nvmls_own_whatever_cuda_visible_devices_says(
    monkeypatch: pytest.MonkeyPatch, visible: str | None
) -> None:
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    fake = FakePynvml(n_gpus=2)
    meter = NvmlMeter(1, fake)
    assert meter.available and fake.handles_asked == [1]
    meter.begin_window("w")
    assert list(meter.end_window("w").energy_j) == ["gpu1"]


def test_nvml_error_during_a_window_becomes_measurement_error() -> None:
    fake = FakePynvml()
    meter = NvmlMeter(0, fake)
    meter.begin_window("run")
    fake.energy_counter = False
    with pytest.raises(MeasurementError, match="nvmlDeviceGetTotalEnergyConsumption failed on GPU 0"):
        meter.end_window("run")


def test_close_shuts_nvml_down_once() -> None:
    fake = FakePynvml()
    with NvmlMeter(0, fake):
        pass
    NvmlMeter(0, fake).close()
    assert fake.shutdown_calls == 2


def test_real_pynvml_without_a_gpu_is_unavailable_rather_than_raising() -> None:
    real = pytest.importorskip("pynvml")
    meter = NvmlMeter(0, real)
    try:
        assert meter.available or "NVML" in (meter.reason or "")
    finally:
        meter.close()
