"""Energy meters: a registry of sources and probes for the meters this host has.

A meter is one :class:`~harness.meters.base.EnergyMeter` subclass and one line here; the class
declares its config name, its probe (:meth:`~harness.meters.base.EnergyMeter.detect`) and its
place in the "auto" choice, and detection iterates :data:`METERS` in registration order.
Nothing here imports a vendor library: ``pynvml`` is imported only when NVML is probed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.meters.base import Clock, EnergyMeter, EnergyWindow, MeterProbe, NullMeter, energy_stats
from harness.registry import Registry

METERS: Registry[type[EnergyMeter]] = Registry("energy meter")
METERS.register("null", "harness.meters.base:NullMeter")
METERS.register("rapl", "harness.meters.rapl:RaplMeter")
METERS.register("nvml", "harness.meters.nvml:NvmlMeter")
METERS.register("jetson", "harness.meters.jetson:JetsonMeter")
METERS.register("tegrastats", "harness.meters.tegrastats:TegrastatsMeter")
METERS.register("external", "harness.meters.external:ExternalMeter")

__all__ = [
    "METERS", "EnergyMeter", "EnergyWindow", "MeterProbe", "NullMeter", "auto_order", "choose_meter",
    "detect_cpu_meter", "detect_meters", "energy_stats", "rail_meters",
]


def auto_order(on_gpu: bool, names: Iterable[str] | None = None) -> list[str]:
    """The registered meters (of ``names``, all by default) that ``measure.energy_meter = "auto"`` considers
    for a GPU or CPU runtime, best first: by each class's ``auto_rank``, offered per its ``auto_devices``."""
    device = "cuda" if on_gpu else "cpu"
    ranked = []
    for name in METERS.in_order() if names is None else names:
        if name not in METERS:
            continue
        cls = METERS.get(name)
        if cls.auto_rank is not None and device in cls.auto_devices:
            ranked.append((cls.auto_rank, name))
    return [name for _, name in sorted(ranked)]


def rail_meters() -> list[str]:
    """The registered meters that read Jetson rails, so a target naming one needs a rail map."""
    return [name for name in METERS.in_order() if METERS.get(name).needs_rail_map]


def choose_meter(meters: dict[str, EnergyMeter], choice: str = "auto", *, on_gpu: bool = False) -> EnergyMeter:
    """The meter to use from :func:`detect_meters`' answer; the others are closed.

    ``choice`` names one meter (its NullMeter, with its reason, when it is unavailable) or is
    ``"auto"``: the first available meter in :func:`auto_order`, else a NullMeter listing why
    each candidate was unavailable.
    """
    if choice == "null":
        chosen: EnergyMeter = NullMeter("energy measurement was switched off (measure.energy_meter = 'null')")
    elif choice != "auto":
        chosen = meters.get(choice) or NullMeter(f"no {choice} meter was probed")
    else:
        order = auto_order(on_gpu, meters)
        available = [meters[n] for n in order if meters[n].available]
        if available:
            chosen = available[0]
        else:
            why = "; ".join(f"{n}: {meters[n].reason}" for n in order)
            chosen = NullMeter(f"no energy meter is available ({why})")
    for meter in meters.values():
        if meter is not chosen:
            meter.close()
    return chosen


def detect_cpu_meter(powercap_root: Path = Path("/sys/class/powercap")) -> EnergyMeter:
    """The best available CPU-package meter (RAPL) under ``powercap_root``, else a NullMeter saying why."""
    probe = MeterProbe(powercap_root=Path(powercap_root), tegrastats_command=None)
    reasons = []
    for name in auto_order(on_gpu=False):
        cls = METERS.get(name)
        if cls.scope != "cpu-package":
            continue
        meter = cls.detect(probe, {})
        if isinstance(meter, EnergyMeter) and meter.available:
            return meter
        if isinstance(meter, EnergyMeter):
            meter.close()
            reasons.append(meter.reason or f"the {name} meter is unavailable")
        elif meter is not None:
            reasons.append(meter)
    return NullMeter("; ".join(reasons) or "no CPU-package energy meter is registered")


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
    """Every registered meter by name, in registration order: the meter itself when available, else a
    NullMeter saying why. Each class's :meth:`~harness.meters.base.EnergyMeter.detect` probes it
    (``tegrastats`` is only a fallback when the Jetson sysfs rails cannot be read). With
    ``probe_nvml=False`` the NVML meter's module is not even imported. Sampling meters start on
    their first window; close them (or use ``with``) when done.
    """
    probe = MeterProbe(sysfs_root=Path(sysfs_root), model_file=Path(model_file), nvml_device_index=nvml_device_index,
                       pynvml_module=pynvml_module, tegrastats_command=tegrastats_command,
                       external_command=external_command, external_file=external_file, clock=clock)
    not_probed = {} if probe_nvml else {"nvml": "NVML was not probed (probe_nvml=False)"}
    meters: dict[str, EnergyMeter] = {}
    for name in METERS.in_order():
        found = not_probed.get(name) or METERS.get(name).detect(probe, meters)
        if found is None:
            continue
        if isinstance(found, str):
            meters[name] = NullMeter(found, clock=clock)
        elif found.available:
            meters[name] = found
        else:
            found.close()
            meters[name] = NullMeter(found.reason or f"the {name} meter is unavailable", clock=clock)
    return meters
