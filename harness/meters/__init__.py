"""Energy meters: a registry of sources and a probe for the host CPU's meter."""

from __future__ import annotations

from pathlib import Path

from harness.meters.base import EnergyMeter, EnergyWindow, NullMeter, energy_stats
from harness.registry import Registry

METERS: Registry[type[EnergyMeter]] = Registry("energy meter")
METERS.register("null", "harness.meters.base:NullMeter")
METERS.register("rapl", "harness.meters.rapl:RaplMeter")

__all__ = ["METERS", "EnergyMeter", "EnergyWindow", "NullMeter", "detect_cpu_meter", "energy_stats"]


def detect_cpu_meter(powercap_root: Path = Path("/sys/class/powercap")) -> EnergyMeter:
    """A :class:`RaplMeter` when a readable package counter exists, else a NullMeter saying why."""
    from harness.meters.rapl import RaplMeter

    meter = RaplMeter(powercap_root)
    return meter if meter.available else NullMeter(meter.reason or "RAPL is unavailable")
