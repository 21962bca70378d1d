"""Energy meters with Zeus-style named windows over cumulative counters.

``meter.begin_window("resnet18-int8/bs1")`` snapshots every counter;
``meter.end_window(...)`` snapshots again and returns the difference as an
:class:`EnergyWindow`. Several windows may be open at once (nested or overlapping).
A meter without hardware is still a meter: it is ``available = False``, says why in
``reason``, and its windows carry no energy instead of raising.

Counter meters (RAPL, the NVML energy counter) subtract snapshots taken at the window
edges. Sampling meters (:mod:`harness.meters.sampling`) override the two edge hooks,
:meth:`EnergyMeter._edge` and :meth:`EnergyMeter._window_energy_j`, and integrate a
power trace instead. Meters that sample in the background start on ``start()`` (or
their first window) and stop on ``close()``; ``with meter:`` does both.

Each meter class declares what detection needs (:func:`harness.meters.detect_meters` and
:func:`harness.meters.choose_meter` iterate :data:`harness.meters.METERS` and read only these):
``name`` (its config name: ``measure.energy_meter``, a target's ``energy.meter``),
``needs_rail_map``, ``auto_rank`` (its position in ``measure.energy_meter = "auto"``, lowest first; ``None``: never
chosen by "auto"), ``auto_devices`` (the runtime device kinds "auto" offers it to) and
:meth:`EnergyMeter.detect`, its availability probe over the roots in a :class:`MeterProbe`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import MeasurementError
from harness.records import EnergyStats

SCOPES = ("module", "soc-rails", "gpu-board", "cpu-package", "wall")

Clock = Callable[[], float]


@dataclass(frozen=True)
class EnergyWindow:
    """Energy spent between ``begin_window(name)`` and ``end_window(name)``."""

    name: str
    duration_s: float
    energy_j: dict[str, float]  # per rail / domain; may overlap (a package and its cores)
    total_energy_j: float | None  # the meter's own non-overlapping total; None when unavailable
    scope: str  # one of SCOPES, or "none" for the null meter
    source: str  # how it was obtained, e.g. "rapl-counter"
    sample_period_s: float | None  # None: a cumulative counter read only at the window edges
    warnings: list[str] = field(default_factory=list)
    n_samples: int | None = None  # power samples inside the window (sampling meters only)
    begin_s: float | None = None  # the meter clock's reading at the window start


@dataclass(frozen=True)
class MeterProbe:
    """Where and how detection looks: the injected roots and commands every meter's probe reads."""

    sysfs_root: Path = Path("/sys")
    model_file: Path = Path("/proc/device-tree/model")
    powercap_root: Path | None = None  # None: <sysfs_root>/class/powercap
    nvml_device_index: int = 0
    pynvml_module: Any = None
    tegrastats_command: str | Sequence[str] | None = "tegrastats"
    external_command: str | Sequence[str] | None = None
    external_file: Path | None = None
    clock: Clock = time.monotonic

    @property
    def powercap(self) -> Path:
        return Path(self.powercap_root) if self.powercap_root is not None else Path(self.sysfs_root) / "class" / "powercap"


class EnergyMeter(ABC):
    """Base class: subclasses implement :meth:`_read_counters_j` and set the class attributes."""

    name: str = "abstract"  # the config name, its key in METERS
    scope: str = "none"
    source: str = "none"
    sample_period_s: float | None = None
    sensor_period_s: float | None = None  # how often the sensor's value changes; None: not limiting
    auto_rank: ClassVar[int | None] = None  # position in the "auto" choice, lowest first; None: never chosen by it
    auto_devices: ClassVar[frozenset[str]] = frozenset({"cpu", "cuda"})  # runtime device kinds "auto" offers it to
    needs_rail_map: ClassVar[bool] = False  # reads Jetson rails: a target naming it must give energy.rail_map

    @classmethod
    def detect(cls, probe: MeterProbe, found: Mapping[str, EnergyMeter]) -> EnergyMeter | str | None:
        """This meter on the probed host (``available`` says whether it works, ``reason`` why not), a
        string saying why it was not probed, or None for a meter detection does not list.
        ``found`` holds the meters detected before this one (registration order)."""
        return None

    def __init__(self, *, clock: Clock = time.monotonic, min_window_s: float = 1.0) -> None:
        self._clock = clock
        self.min_window_s = min_window_s
        self.available: bool = True
        self.reason: str | None = None
        self._open: dict[str, tuple[float, Any]] = {}

    @abstractmethod
    def _read_counters_j(self) -> dict[str, float]:
        """Cumulative energy per domain in joules (any origin; only differences are used)."""

    def _delta_j(self, domain: str, begin_j: float, end_j: float) -> float:
        """Energy of one domain over a window; meters whose counters wrap override this."""
        return end_j - begin_j

    def _total_j(self, energy_j: dict[str, float]) -> float | None:
        """Non-overlapping total; meters with nested domains override this."""
        return sum(energy_j.values()) if energy_j else None

    def _snapshot(self) -> dict[str, float]:
        if not self.available:
            return {}
        try:
            return self._read_counters_j()
        except (OSError, ValueError) as exc:
            raise MeasurementError(f"{self.name} meter could not read its counters: {exc}") from exc

    @property
    def required_window_s(self) -> float:
        """Shortest trustworthy window: ``min_window_s``, or 100 sensor update periods if longer."""
        if self.sensor_period_s is None:
            return self.min_window_s
        return max(self.min_window_s, 100.0 * self.sensor_period_s)

    def _short_window_warning(self, duration_s: float, error_source: str) -> list[str]:
        required_s = self.required_window_s
        if not self.available or duration_s >= required_s:
            return []
        why = "" if required_s == self.min_window_s else (
            f" (100 x its {_seconds(self.sensor_period_s or 0.0)} s sensor update period)"
        )
        warnings = [
            f"window of {_seconds(duration_s)} s is shorter than the {_seconds(required_s)} s "
            f"minimum for this meter{why}; energy may be dominated by {error_source}"
        ]
        if self.sensor_period_s is not None and duration_s < self.sensor_period_s:
            warnings.append(
                f"window of {_seconds(duration_s)} s is shorter than one {_seconds(self.sensor_period_s)} s update "
                f"of the {self.name} sensor: its energy is not a measurement (it may read zero, or one reading "
                "stretched over the window)"
            )
        return warnings

    def _edge(self) -> tuple[float, Any]:
        """Time and state at a window edge; counter meters snapshot their counters."""
        return self._clock(), self._snapshot()

    def _window_energy_j(
        self, begin_s: float, begin: Any, end_s: float, end: Any
    ) -> tuple[dict[str, float], list[str], int | None]:
        """Energy per domain between two edges, warnings, and the number of samples used."""
        energy_j = {k: self._delta_j(k, begin[k], end[k]) for k in begin if k in end}
        return energy_j, self._short_window_warning(end_s - begin_s, "counter resolution"), None

    def begin_window(self, name: str) -> None:
        if name in self._open:
            raise MeasurementError(f"energy window {name!r} is already open on the {self.name} meter")
        self._open[name] = self._edge()

    def end_window(self, name: str) -> EnergyWindow:
        if name not in self._open:
            open_names = ", ".join(sorted(self._open)) or "none"
            raise MeasurementError(
                f"energy window {name!r} was never begun on the {self.name} meter (open: {open_names})"
            )
        begin_s, begin = self._open.pop(name)
        end_s, end = self._edge()
        energy_j, warnings, n_samples = self._window_energy_j(begin_s, begin, end_s, end)
        return EnergyWindow(
            name=name,
            duration_s=end_s - begin_s,
            energy_j=energy_j,
            total_energy_j=self._total_j(energy_j) if self.available else None,
            scope=self.scope,
            source=self.source,
            sample_period_s=self.sample_period_s if self.available else None,
            warnings=warnings,
            n_samples=n_samples,
            begin_s=begin_s,
        )

    def power_trace(self, window: EnergyWindow) -> list[tuple[float, float]]:
        """``(seconds from the window start, total watts)`` of the window; counter meters have none."""
        return []

    def start(self) -> None:  # noqa: B027 - an optional hook: counter meters keep the empty default
        """Begin background sampling; counter meters need none."""

    def close(self) -> None:  # noqa: B027 - an optional hook, like start
        """Stop background sampling and release the device library, if any."""

    def __enter__(self) -> EnergyMeter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class NullMeter(EnergyMeter):
    """Stands in when no energy source exists; ``reason`` says why."""

    name = "null"
    scope = "none"
    source = "null"

    def __init__(
        self, reason: str = "no energy meter was configured", *, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(clock=clock)
        self.available = False
        self.reason = reason

    def _read_counters_j(self) -> dict[str, float]:
        return {}


def energy_stats(
    window: EnergyWindow | None,
    n_inferences: int,
    meter: EnergyMeter,
    *,
    idle: EnergyWindow | None = None,
    idle_unavailable_reason: str | None = None,
    trace: list[tuple[float, float]] | None = None,
) -> EnergyStats:
    """Per-inference energy of a window that covered ``n_inferences`` inferences.

    Gross energy is the meter's total over the window. With an ``idle`` window (measured before
    the run, same meter) the dynamic energy is ``gross - idle power x window duration``.
    ``trace`` is the window's power trace as ``(seconds from the window start, watts)``.
    """
    if n_inferences <= 0:
        raise ValueError(f"n_inferences must be positive, got {n_inferences}")
    if window is None or not meter.available or window.total_energy_j is None:
        reason = meter.reason or f"the {meter.name} meter recorded no total energy for this window"
        return EnergyStats(None, None, None, unavailable_reason=reason, meter=meter.name)
    gross_j = window.total_energy_j
    warnings = list(window.warnings)
    idle_w = dynamic_mj = None
    dynamic_reason: str | None = idle_unavailable_reason or "no idle baseline was measured"
    if idle is not None and idle.total_energy_j is not None and idle.duration_s > 0:
        idle_w = idle.total_energy_j / idle.duration_s
        dynamic_j = gross_j - idle_w * window.duration_s
        dynamic_mj = dynamic_j * 1000.0 / n_inferences
        dynamic_reason = None
        warnings += [f"idle baseline: {w}" for w in idle.warnings]
        if dynamic_j < 0:
            warnings.append(
                f"dynamic energy is negative ({dynamic_j:.3g} J): idle power {idle_w:.3g} W exceeds the "
                f"loaded average {gross_j / window.duration_s:.3g} W; sensor noise outweighs the workload"
            )
    points = trace or []
    return EnergyStats(
        energy_per_inference_mj=gross_j * 1000.0 / n_inferences,
        scope=window.scope,
        source=window.source,
        meter=meter.name,
        dynamic_energy_per_inference_mj=dynamic_mj,
        dynamic_unavailable_reason=dynamic_reason,
        idle_power_w=idle_w,
        idle_window_s=idle.duration_s if idle is not None and idle_w is not None else None,
        window_s=window.duration_s,
        average_power_w=gross_j / window.duration_s if window.duration_s > 0 else None,
        energy_by_rail_j=dict(window.energy_j),
        sample_period_s=window.sample_period_s,
        n_power_samples=window.n_samples,
        warnings=warnings,
        power_trace_t_s=[t for t, _ in points],
        power_trace_w=[w for _, w in points],
    )


def bounded_trace(points: list[tuple[float, float]], max_points: int = 2000) -> list[tuple[float, float]]:
    """Every k-th point (first and last kept) so a stored trace has at most ``max_points``."""
    if len(points) <= max_points:
        return list(points)
    step = -(-len(points) // (max_points - 1))
    kept = points[::step]
    return kept if kept[-1] == points[-1] else kept + [points[-1]]


def _seconds(value: float) -> str:
    text = f"{value:.3g}"
    return text if any(c in text for c in ".e") else f"{text}.0"
