"""Device state around a measurement: CPU governor and clocks, temperatures, GPU clocks via NVML.

Read before and after each timed loop so a result carries the conditions it was taken
under, with a warning when they make the numbers untrustworthy (a DVFS governor, a
thermal rise, a throttled GPU). Everything is read from an injected sysfs root and an
injected NVML module, so tests use a fake tree and a fake ``pynvml``. A value that cannot
be read is left out and ``unavailable_reasons`` says why; nothing is guessed.

NVML has no query that says "clocks are locked" (``nvidia-smi -lgc``): the SM clock, its
maximum and the applications clock are recorded, and the clock-event (throttle) reasons
are decoded; a GPU reporting a power or thermal slowdown gets a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.measure.jetson_state import JetsonState, power_mode_warning
from harness.records import DeviceState

#: rise in any thermal zone during one timed loop that earns a warning (degrees C)
THERMAL_RISE_WARN_C = 10.0
#: NVML clock-event reason bits (nvmlClocksEventReason*, formerly nvmlClocksThrottleReason*)
CLOCK_EVENT_REASONS = {
    0x1: "gpu-idle",
    0x2: "applications-clocks-setting",
    0x4: "sw-power-cap",
    0x8: "hw-slowdown",
    0x10: "sync-boost",
    0x20: "sw-thermal-slowdown",
    0x40: "hw-thermal-slowdown",
    0x80: "hw-power-brake-slowdown",
    0x100: "display-clock-setting",
}
#: reasons that mean the GPU ran below the clocks it was asked for
THROTTLING = frozenset({"sw-power-cap", "hw-slowdown", "sw-thermal-slowdown", "hw-thermal-slowdown",
                        "hw-power-brake-slowdown"})


@dataclass(frozen=True)
class Snapshot:
    """One reading of the device state."""

    cpu_governors: dict[str, str] = field(default_factory=dict)
    cpu_freq_mhz: dict[str, float] = field(default_factory=dict)
    cpu_max_freq_mhz: dict[str, float] = field(default_factory=dict)
    temperatures_c: dict[str, float] = field(default_factory=dict)
    gpu: dict[str, Any] = field(default_factory=dict)
    unavailable_reasons: dict[str, str] = field(default_factory=dict)
    jetson: JetsonState | None = None  # None: not read (no reader given)
    thermal_throttle: list[str] | None = None  # sysfs thermal throttling found; None: nothing readable says


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_cpu(sysfs_root: Path) -> tuple[dict[str, str], dict[str, float], dict[str, float], str | None]:
    """Governor, current and maximum frequency (MHz) of every CPU with a cpufreq directory."""
    base = Path(sysfs_root) / "devices" / "system" / "cpu"
    governors: dict[str, str] = {}
    freq: dict[str, float] = {}
    max_freq: dict[str, float] = {}
    cpus = sorted((p for p in base.glob("cpu[0-9]*") if p.name[3:].isdigit()), key=lambda p: int(p.name[3:]))
    for cpu in cpus:
        cf = cpu / "cpufreq"
        if (gov := _read(cf / "scaling_governor")) is not None:
            governors[cpu.name] = gov
        for name, out in (("scaling_cur_freq", freq), ("cpuinfo_max_freq", max_freq)):
            text = _read(cf / name)
            if text is not None and text.isdigit():
                out[cpu.name] = int(text) / 1000.0  # kHz
    reason = None if governors else (
        f"no cpufreq under {base}: the kernel exposes no frequency scaling here (a VM or container)"
    )
    return governors, freq, max_freq, reason


def read_thermal(sysfs_root: Path) -> tuple[dict[str, float], str | None]:
    """Temperature of every readable thermal zone, keyed ``<type>`` (``<type>#<n>`` on repeats)."""
    base = Path(sysfs_root) / "class" / "thermal"
    temps: dict[str, float] = {}
    for zone in sorted(base.glob("thermal_zone*"), key=lambda p: int(p.name[12:] or 0)):
        text = _read(zone / "temp")
        if text is None or not text.lstrip("-").isdigit():
            continue
        kind = _read(zone / "type") or zone.name
        key = kind if kind not in temps else f"{kind}#{zone.name[12:]}"
        temps[key] = int(text) / 1000.0  # millidegrees
    return temps, None if temps else f"no readable thermal zone under {base}"


#: cooling devices whose non-zero state caps a clock (Linux cpufreq/devfreq cooling, Jetson's
#: cpu-/gpu-/emc-balanced and throttle devices); fans and ACPI "Processor"/TCC offsets are left out
THROTTLE_COOLING_MARKERS = ("cpufreq", "devfreq", "balanced", "throttle")


def read_thermal_throttle(sysfs_root: Path) -> tuple[list[str] | None, str | None]:
    """Thermal throttling readable from sysfs: zones at or above a passive trip, active clock-capping coolers.

    ``([], None)`` means readable and not throttling; ``(None, reason)`` means nothing here says.
    """
    base = Path(sysfs_root) / "class" / "thermal"
    found: list[str] = []
    readable = False
    for zone in sorted(base.glob("thermal_zone*")):
        text = _read(zone / "temp")
        if text is None or not text.lstrip("-").isdigit():
            continue
        temp_c, kind = int(text) / 1000.0, _read(zone / "type") or zone.name
        for trip_type in sorted(zone.glob("trip_point_*_type")):
            trip = _read(trip_type.with_name(trip_type.name.replace("_type", "_temp")))
            if _read(trip_type) != "passive" or trip is None or not trip.lstrip("-").isdigit() or int(trip) <= 0:
                continue
            readable = True
            if temp_c >= int(trip) / 1000.0:
                found.append(f"thermal-trip:{kind} ({temp_c:.1f} C >= passive trip {int(trip) / 1000.0:.1f} C)")
                break
    for dev in sorted(base.glob("cooling_device*")):
        cooler, state, top = (_read(dev / f) for f in ("type", "cur_state", "max_state"))
        if not cooler or not any(m in cooler for m in THROTTLE_COOLING_MARKERS) or state is None or not state.isdigit():
            continue
        readable = True
        if int(state) > 0:
            found.append(f"cooling:{cooler} (state {state}/{top})")
    if not readable:
        return None, f"no passive trip point or clock-capping cooling device under {base}"
    return found, None


def read_nvml(nvml: Any, device_index: int = 0) -> tuple[dict[str, Any], str | None]:
    """SM / memory clocks, maximum and applications SM clock, temperature and clock-event reasons."""
    if nvml is None:
        return {}, "NVML is not in use (no NVIDIA GPU runtime, or nvidia-ml-py is not installed)"
    try:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByIndex(device_index)
        gpu: dict[str, Any] = {
            "sm_clock_mhz": nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
            "mem_clock_mhz": nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),
            "max_sm_clock_mhz": nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM),
            "temperature_c": nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
        }
        try:
            gpu["applications_sm_clock_mhz"] = nvml.nvmlDeviceGetApplicationsClock(handle, nvml.NVML_CLOCK_SM)
        except nvml.NVMLError:
            gpu["applications_sm_clock_mhz"] = None
        bits = nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)
        gpu["clock_event_reasons"] = decode_clock_events(bits)
        return gpu, None
    except nvml.NVMLError as exc:
        return {}, f"NVML could not be read: {exc}"


def decode_clock_events(bits: int) -> list[str]:
    return [name for bit, name in CLOCK_EVENT_REASONS.items() if bits & bit]


def snapshot(
    sysfs_root: Path = Path("/sys"), nvml: Any = None, device_index: int = 0,
    jetson_reader: Callable[[], JetsonState] | None = None,
) -> Snapshot:
    """One reading; ``jetson_reader`` (e.g. ``lambda: read_jetson_state(run, sysfs)``) adds nvpmodel state."""
    governors, freq, max_freq, cpu_reason = read_cpu(sysfs_root)
    temps, thermal_reason = read_thermal(sysfs_root)
    gpu, gpu_reason = read_nvml(nvml, device_index)
    reasons = {k: v for k, v in (("cpufreq", cpu_reason), ("thermal", thermal_reason), ("gpu", gpu_reason)) if v}
    jetson = jetson_reader() if jetson_reader is not None else None
    throttle, throttle_reason = read_thermal_throttle(sysfs_root)
    if throttle_reason:
        reasons["thermal_throttle"] = throttle_reason
    return Snapshot(governors, freq, max_freq, temps, gpu, reasons, jetson, throttle)


def device_state(before: Snapshot, after: Snapshot, expected_power_mode: str | None = None) -> DeviceState:
    """The state of one timed loop from readings at its start and end, with warnings.

    ``expected_power_mode`` is the target profile's default nvpmodel mode, when a target was named.
    """
    jetson = before.jetson
    extra_reasons = {f"jetson.{k}": v for k, v in jetson.unavailable_reasons.items()} if jetson else {}
    throttled, throttle_reasons, throttle_reason = throttling(before, after)
    if throttle_reason:
        extra_reasons["throttled"] = throttle_reason
    return DeviceState(
        cpu_governors=before.cpu_governors,
        cpu_freq_mhz=before.cpu_freq_mhz,
        cpu_freq_after_mhz=after.cpu_freq_mhz,
        cpu_max_freq_mhz=before.cpu_max_freq_mhz,
        temperatures_c=before.temperatures_c,
        temperatures_after_c=after.temperatures_c,
        gpu=before.gpu,
        gpu_after=after.gpu,
        warnings=state_warnings(before, after) + jetson_warnings(before.jetson, after.jetson, expected_power_mode),
        unavailable_reasons={**before.unavailable_reasons, **after.unavailable_reasons, **extra_reasons},
        power_mode=jetson.power_mode if jetson else None,
        power_mode_id=jetson.power_mode_id if jetson else None,
        expected_power_mode=expected_power_mode,
        jetson_clocks_active=jetson.jetson_clocks_active if jetson else None,
        throttled=throttled,
        throttle_reasons=throttle_reasons,
        jetson_clocks={"source": jetson.jetson_clocks_source, "power_mode_source": jetson.power_mode_source,
                       "clocks": jetson.clocks} if jetson and (jetson.power_mode or jetson.power_mode_id is not None) else {},
    )


def throttling(before: Snapshot, after: Snapshot) -> tuple[bool | None, list[str], str | None]:
    """Whether the loop ran throttled, judged at its start and end: ``(flag, reasons, why None)``.

    Sources: NVML clock-event reasons (power cap, thermal and hardware slowdowns; not idle or
    application-clock settings) and sysfs thermal throttling. False needs at least one source
    read; with none the flag is None and the third item says why.
    """
    reasons: list[str] = []
    readable = False
    for label, snap in (("start", before), ("end", after)):
        if "clock_event_reasons" in snap.gpu:
            readable = True
            reasons += [f"gpu:{r}@{label}" for r in snap.gpu["clock_event_reasons"] if r in THROTTLING]
        if snap.thermal_throttle is not None:
            readable = True
            reasons += [f"{r}@{label}" for r in snap.thermal_throttle]
    if not readable:
        return None, [], "neither NVML clock-event reasons nor sysfs thermal throttling could be read"
    return bool(reasons), reasons, None


def jetson_warnings(before: JetsonState | None, after: JetsonState | None, expected: str | None) -> list[str]:
    """Power mode against the target's default, and changes of mode or clock pinning during the loop."""
    if before is None:
        return []
    warnings = [w] if (w := power_mode_warning(before, expected)) else []
    if after is not None and (before.power_mode, before.power_mode_id) != (after.power_mode, after.power_mode_id):
        warnings.append(f"the power mode changed during the measurement ({before.power_mode} -> {after.power_mode})")
    if after is not None and before.jetson_clocks_active is not None and after.jetson_clocks_active is not None \
            and before.jetson_clocks_active != after.jetson_clocks_active:
        warnings.append("jetson_clocks was switched during the measurement: clocks were not the same throughout")
    if before.jetson_clocks_active is False:
        warnings.append(
            "jetson_clocks is not active: CPU/GPU clocks follow DVFS, so latency varies with load "
            "(set measure.lock_clocks = true, or run sudo jetson_clocks)"
        )
    return warnings


def state_warnings(before: Snapshot, after: Snapshot) -> list[str]:
    """Conditions under which latency and energy numbers should not be trusted as they stand."""
    warnings = []
    by_governor: dict[str, list[str]] = {}
    for cpu, gov in before.cpu_governors.items():
        by_governor.setdefault(gov, []).append(cpu)
    for gov, cpus in sorted(by_governor.items()):
        where = f"{len(cpus)} CPU(s) ({', '.join(cpus[:4])}{', ...' if len(cpus) > 4 else ''})"
        if gov == "powersave":
            warnings.append(
                f"CPU governor 'powersave' on {where}: clocks follow load (or stay low), so latency and energy "
                "vary with DVFS; use the 'performance' governor for comparable numbers"
            )
        elif gov != "performance":
            warnings.append(
                f"CPU governor '{gov}' on {where}: clocks scale with load, so short runs see ramp-up; "
                "the 'performance' governor gives steadier numbers"
            )
    for zone, t0 in before.temperatures_c.items():
        t1 = after.temperatures_c.get(zone)
        if t1 is not None and t1 - t0 >= THERMAL_RISE_WARN_C:
            warnings.append(
                f"thermal zone {zone} rose {t1 - t0:.1f} C during the measurement ({t0:.1f} -> {t1:.1f} C): "
                "clocks may have throttled; let the device cool between configurations"
            )
    for label, snap in (("start", before), ("end", after)):
        throttled = [r for r in snap.gpu.get("clock_event_reasons", []) if r in THROTTLING]
        if throttled:
            warnings.append(f"GPU clocks were held down at the {label} of the measurement ({', '.join(throttled)})")
        if snap.thermal_throttle:
            warnings.append(
                f"thermal throttling at the {label} of the measurement ({'; '.join(snap.thermal_throttle)}): "
                "this point was measured on a throttled device; let it cool and measure again"
            )
    return warnings
