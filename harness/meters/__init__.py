"""Energy meters: a registry of sources and probes for the meters this host has.

Nothing here imports a vendor library: ``pynvml`` is imported only when NVML is probed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.meters.base import Clock, EnergyMeter, EnergyWindow, NullMeter, energy_stats
from harness.registry import Registry

METERS: Registry[type[EnergyMeter]] = Registry("energy meter")
METERS.register("null", "harness.meters.base:NullMeter")
METERS.register("rapl", "harness.meters.rapl:RaplMeter")
METERS.register("nvml", "harness.meters.nvml:NvmlMeter")
METERS.register("jetson", "harness.meters.jetson:JetsonMeter")
METERS.register("tegrastats", "harness.meters.tegrastats:TegrastatsMeter")
METERS.register("external", "harness.meters.external:ExternalMeter")

__all__ = [
    "METERS", "EnergyMeter", "EnergyWindow", "NullMeter", "detect_cpu_meter", "detect_meters", "energy_stats",
]


def detect_cpu_meter(powercap_root: Path = Path("/sys/class/powercap")) -> EnergyMeter:
    """A :class:`RaplMeter` when a readable package counter exists, else a NullMeter saying why."""
    from harness.meters.rapl import RaplMeter

    meter = RaplMeter(powercap_root)
    return meter if meter.available else NullMeter(meter.reason or "RAPL is unavailable")


def detect_meters(
    *,
    sysfs_root: Path = Path("/sys"),
    model_file: Path = Path("/proc/device-tree/model"),
    probe_nvml: bool = True,
    nvml_device_index: int = 0,
    pynvml_module: Any = None,
    tegrastats_command: str | Sequence[str] | None = "tegrastats",
    external_command: str | Sequence[str] | None = None,
    external_file: Path | None = None,
    clock: Clock = time.monotonic,
) -> dict[str, EnergyMeter]:
    """Every meter by name: the meter itself when available, else a NullMeter saying why.

    Order: ``rapl``, ``nvml``, ``jetson``, ``tegrastats`` (only as a fallback when the
    Jetson sysfs rails cannot be read), ``external``. Sampling meters start on their
    first window; close them (or use ``with``) when done.
    """
    from harness.meters.external import ExternalMeter
    from harness.meters.jetson import JetsonMeter
    from harness.meters.rapl import RaplMeter
    from harness.meters.tegrastats import TegrastatsMeter

    candidates: dict[str, EnergyMeter | str] = {"rapl": RaplMeter(Path(sysfs_root) / "class" / "powercap", clock)}
    if probe_nvml:
        from harness.meters.nvml import NvmlMeter

        candidates["nvml"] = NvmlMeter(nvml_device_index, pynvml_module, clock=clock)
    else:
        candidates["nvml"] = "NVML was not probed (probe_nvml=False)"
    jetson = JetsonMeter(sysfs_root, model_file=model_file, clock=clock)
    candidates["jetson"] = jetson
    if jetson.available:
        candidates["tegrastats"] = "the Jetson sysfs rails are readable; tegrastats is only their fallback"
    elif tegrastats_command is None:
        candidates["tegrastats"] = "tegrastats was not probed (tegrastats_command=None)"
    else:
        candidates["tegrastats"] = TegrastatsMeter(command=tegrastats_command, model_file=model_file, clock=clock)
    candidates["external"] = ExternalMeter(external_command, external_file, clock=clock)
    meters: dict[str, EnergyMeter] = {}
    for name, meter in candidates.items():
        if isinstance(meter, str):
            meters[name] = NullMeter(meter, clock=clock)
        elif meter.available:
            meters[name] = meter
        else:
            meter.close()
            meters[name] = NullMeter(meter.reason or f"the {name} meter is unavailable", clock=clock)
    return meters
