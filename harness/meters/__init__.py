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
    "METERS", "EnergyMeter", "EnergyWindow", "NullMeter", "choose_meter", "detect_cpu_meter", "detect_meters",
    "energy_stats",
]

#: which meter ``measure.energy_meter = "auto"`` prefers, best first. An external (wall) meter is
#: only available when configured; a Jetson module rail covers CPU and GPU; NVML covers the GPU
#: board only, so it is offered to GPU runtimes; RAPL covers the CPU package, the whole compute
#: of a CPU runtime but only the host side of a GPU one.
AUTO_ORDER_CPU = ("external", "jetson", "tegrastats", "rapl")
AUTO_ORDER_GPU = ("external", "jetson", "tegrastats", "nvml", "rapl")


def choose_meter(meters: dict[str, EnergyMeter], choice: str = "auto", *, on_gpu: bool = False) -> EnergyMeter:
    """The meter to use from :func:`detect_meters`' answer; the others are closed.

    ``choice`` names one meter (its NullMeter, with its reason, when it is unavailable) or is
    ``"auto"``: the first available meter in :data:`AUTO_ORDER_GPU` / :data:`AUTO_ORDER_CPU`,
    else a NullMeter listing why each candidate was unavailable.
    """
    if choice == "null":
        chosen: EnergyMeter = NullMeter("energy measurement was switched off (measure.energy_meter = 'null')")
    elif choice != "auto":
        chosen = meters.get(choice) or NullMeter(f"no {choice} meter was probed")
    else:
        order = AUTO_ORDER_GPU if on_gpu else AUTO_ORDER_CPU
        available = [meters[n] for n in order if n in meters and meters[n].available]
        if available:
            chosen = available[0]
        else:
            why = "; ".join(f"{n}: {meters[n].reason}" for n in order if n in meters)
            chosen = NullMeter(f"no energy meter is available ({why})")
    for meter in meters.values():
        if meter is not chosen:
            meter.close()
    return chosen


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
