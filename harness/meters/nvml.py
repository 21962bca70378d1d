"""NVIDIA GPU board energy through NVML (the ``nvidia-ml-py`` package, imported as ``pynvml``).

Volta and newer keep a cumulative energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
millijoules since the driver loaded): windows subtract two readings, as Zeus does. Where
the counter is not supported, power (``nvmlDeviceGetPowerUsage``, milliwatts) is sampled
and integrated. Both cover the whole board ("gpu-board"), not the host.

Pitfalls kept in view: the counter updates about every 0.1 s, so short windows read zero
(ml-energy/zeus#12); since Ampere the power reading is a 1-second average
(ml-energy/zeus#45), so the power fallback's sensor period is 1 s there. NVML numbers
devices in PCI bus order like ``nvidia-smi``, not by ``CUDA_VISIBLE_DEVICES``:
``device_index`` is the NVML index. On Jetson modules NVML reports no power; use the
``jetson`` meter.

``pynvml`` is imported in one place, :func:`_load_pynvml`; tests replace the module-level
name ``harness.meters.nvml.pynvml`` (or pass ``pynvml_module``) with a fake.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from harness.errors import MeasurementError
from harness.meters.base import Clock, EnergyMeter, MeterProbe
from harness.meters.sampling import SamplingMeter

pynvml: Any = None  # replaced by the real module on first use

COUNTER_PERIOD_S = 0.1  # the energy counter's update period (Zeus: as slow as ~10 Hz)
POWER_PERIOD_S = 0.1  # instantaneous power before Ampere
AVERAGED_POWER_PERIOD_S = 1.0  # Ampere and newer: nvmlDeviceGetPowerUsage is a 1-s average
NOT_INSTALLED = "nvidia-ml-py is not installed (pip install 'harness[cuda]')"


def _load_pynvml() -> Any:
    """The single import site of pynvml."""
    global pynvml
    if pynvml is None:
        import pynvml as module  # the nvidia-ml-py distribution

        pynvml = module
    return pynvml


class NvmlMeter(SamplingMeter):
    name = "nvml"
    scope = "gpu-board"
    source = "nvml-energy-counter"
    auto_rank = 40
    auto_devices = frozenset({"cuda"})  # the GPU board only: offered to GPU runtimes

    @classmethod
    def detect(cls, probe: MeterProbe, found: Mapping[str, EnergyMeter]) -> EnergyMeter:
        return cls(probe.nvml_device_index, probe.pynvml_module, clock=probe.clock)

    def __init__(
        self,
        device_index: int = 0,
        pynvml_module: Any = None,
        *,
        clock: Clock = time.monotonic,
        min_window_s: float = 1.0,
        period_s: float = POWER_PERIOD_S,
        autostart: bool = True,
    ) -> None:
        super().__init__(period_s=period_s, clock=clock, min_window_s=min_window_s, autostart=autostart)
        self.device_index = device_index
        self.device_name: str | None = None
        self.uses_counter = False
        self.counter_unavailable_reason: str | None = None  # why power is integrated instead
        self._nvml: Any = None
        self._handle: Any = None
        self._initialised = False
        self.reason = self._discover(pynvml_module)
        self.available = self.reason is None

    def _discover(self, pynvml_module: Any) -> str | None:
        try:
            nv = pynvml_module if pynvml_module is not None else _load_pynvml()
        except ImportError:
            return NOT_INSTALLED
        self._nvml = nv
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            return f"NVML could not be initialised ({exc}): no NVIDIA driver or GPU visible to this process"
        self._initialised = True
        try:
            self._handle = nv.nvmlDeviceGetHandleByIndex(self.device_index)
        except nv.NVMLError as exc:
            self.close()
            return f"NVML has no GPU at index {self.device_index} ({exc})"
        try:
            name = nv.nvmlDeviceGetName(self._handle)
            self.device_name = name.decode() if isinstance(name, bytes) else str(name)
        except nv.NVMLError:
            self.device_name = f"GPU {self.device_index}"
        try:
            nv.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self.uses_counter = True
        except nv.NVMLError as counter_exc:
            try:
                nv.nvmlDeviceGetPowerUsage(self._handle)
            except nv.NVMLError as power_exc:
                self.close()
                return (
                    f"{self.device_name} reports neither an energy counter ({counter_exc}) "
                    f"nor power ({power_exc}) through NVML"
                )
            self.counter_unavailable_reason = str(counter_exc)
        if self.uses_counter:
            self.sensor_period_s, self.sample_period_s = COUNTER_PERIOD_S, None
        else:
            self.source = "nvml-power-integration"
            self.sensor_period_s = AVERAGED_POWER_PERIOD_S if self._averages_power() else self.sampler.period_s
        return None

    def _averages_power(self) -> bool:
        nv = self._nvml
        try:
            arch = nv.nvmlDeviceGetArchitecture(self._handle)
        except (AttributeError, nv.NVMLError):
            return False
        return arch >= getattr(nv, "NVML_DEVICE_ARCH_AMPERE", 7)

    @property
    def _key(self) -> str:
        return f"gpu{self.device_index}"

    def _read_counters_j(self) -> dict[str, float]:
        return {self._key: self._call("nvmlDeviceGetTotalEnergyConsumption") / 1000.0}  # mJ

    def _read_power_w(self) -> dict[str, float]:
        return {self._key: self._call("nvmlDeviceGetPowerUsage") / 1000.0}  # mW

    def _call(self, function: str) -> float:
        try:
            return getattr(self._nvml, function)(self._handle)
        except self._nvml.NVMLError as exc:
            raise MeasurementError(f"NVML {function} failed on GPU {self.device_index}: {exc}") from exc

    def start(self) -> None:
        if not self.uses_counter:
            super().start()

    def _edge(self) -> tuple[float, Any]:
        return EnergyMeter._edge(self) if self.uses_counter else super()._edge()

    def _window_energy_j(
        self, begin_s: float, begin: Any, end_s: float, end: Any
    ) -> tuple[dict[str, float], list[str], int | None]:
        if not (self.available and self.uses_counter):
            return super()._window_energy_j(begin_s, begin, end_s, end)
        energy_j, warnings, _ = EnergyMeter._window_energy_j(self, begin_s, begin, end_s, end)
        if end_s > begin_s and not any(energy_j.values()):
            warnings.append(
                "the NVML energy counter did not change during the window; it updates only every "
                f"~{COUNTER_PERIOD_S} s, so this energy is not a measurement"
            )
        return energy_j, warnings, None

    def close(self) -> None:
        super().close()
        if self._initialised:
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass
