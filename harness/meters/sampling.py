"""Meters for sensors that report instantaneous power: sample a trace, integrate windows.

A :class:`PowerSampler` calls ``read_power_w()`` (rail -> watts) at a fixed period in a
background thread, stamping each reading with the injected clock; tests call
:meth:`PowerSampler.sample_once` themselves. A window's energy is the trapezoid integral
of the piecewise-linear trace over exactly ``[begin, end]``: power at the edges is
interpolated between the neighbouring samples, and held flat (with a warning) where the
trace does not reach an edge. :class:`SamplingMeter` also takes a reading at each window
edge, so the edges are real readings whenever the sensor answers.

A thread rather than a process: sysfs and NVML reads release the GIL, and inference in
onnxruntime / torch runs outside it; a pure-Python busy loop in the measured code can
delay samples by the interpreter's switch interval (5 ms), which the window reports
as a warning when the achieved period falls behind.
"""

from __future__ import annotations

import bisect
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from harness.errors import MeasurementError
from harness.meters.base import Clock, EnergyMeter, EnergyWindow, _seconds, bounded_trace

PowerReader = Callable[[], dict[str, float]]


@dataclass(frozen=True)
class PowerSample:
    t_s: float
    power_w: dict[str, float]


def trapezoid_j(points: Sequence[tuple[float, float]], begin_s: float, end_s: float) -> float:
    """Integral in joules of the piecewise-linear trace through ``(t_s, power_w)`` points.

    Outside the first and last point the trace is held flat at their values.
    """
    if not points or end_s <= begin_s:
        return 0.0
    times = [t for t, _ in points]
    lo, hi = bisect.bisect_right(times, begin_s), bisect.bisect_left(times, end_s)
    knots = [(begin_s, _power_at(points, times, begin_s))] + list(points[lo:hi])
    knots.append((end_s, _power_at(points, times, end_s)))
    return sum((t1 - t0) * (p0 + p1) / 2.0 for (t0, p0), (t1, p1) in pairwise(knots))


def _power_at(points: Sequence[tuple[float, float]], times: list[float], t_s: float) -> float:
    i = bisect.bisect_left(times, t_s)
    if i < len(times) and times[i] == t_s:
        return points[i][1]
    if i == 0:
        return points[0][1]
    if i == len(points):
        return points[-1][1]
    (t0, p0), (t1, p1) = points[i - 1], points[i]
    return p0 + (p1 - p0) * (t_s - t0) / (t1 - t0)


class PowerSampler:
    """A bounded, thread-safe power trace filled by ``sample_once`` or a background loop."""

    def __init__(
        self,
        read_power_w: PowerReader,
        *,
        period_s: float,
        clock: Clock = time.monotonic,
        max_samples: int = 200_000,  # about 3 h at 50 ms; older samples drop
    ) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be positive, got {period_s}")
        self.read_power_w = read_power_w
        self.period_s = period_s
        self._clock = clock
        self._samples: deque[PowerSample] = deque(maxlen=max_samples)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failed_reads = 0
        self.last_error: str | None = None

    @property
    def samples(self) -> list[PowerSample]:
        with self._lock:
            return list(self._samples)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def sample_once(self) -> PowerSample | None:
        """Read the sensor now and append the reading; None when the sensor had nothing yet."""
        try:
            power_w = self.read_power_w()
        except (OSError, ValueError) as exc:
            raise MeasurementError(f"power sensor could not be read: {exc}") from exc
        if not power_w:
            return None
        with self._lock:  # stamp and append together, so concurrent readers stay in time order
            sample = PowerSample(self._clock(), dict(power_w))
            if self._samples and sample.t_s < self._samples[-1].t_s:
                raise MeasurementError("power sample clock went backwards; use a monotonic clock")
            self._samples.append(sample)
        return sample

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="power-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, 5 * self.period_s))
            self._thread = None

    def _loop(self) -> None:
        next_s = time.monotonic()
        while not self._stop.is_set():
            try:
                self.sample_once()
            except MeasurementError as exc:
                self.failed_reads += 1
                self.last_error = str(exc)
            next_s += self.period_s
            delay_s = next_s - time.monotonic()
            if delay_s < 0:  # fell behind: skip the missed ticks instead of bursting
                next_s, delay_s = time.monotonic(), 0.0
            self._stop.wait(delay_s)

    def integrate(self, begin_s: float, end_s: float) -> tuple[dict[str, float], int, list[str]]:
        """Energy per rail over ``[begin_s, end_s]``, samples inside it, and coverage warnings."""
        samples = self.samples
        times = [s.t_s for s in samples]
        lo = max(bisect.bisect_left(times, begin_s) - 1, 0)  # one neighbour either side
        hi = min(bisect.bisect_right(times, end_s) + 1, len(samples))
        near = samples[lo:hi]
        n_inside = sum(begin_s <= s.t_s <= end_s for s in near)
        if not near:
            return {}, 0, ["no power samples were taken; the window has no energy"]
        rails = dict.fromkeys(r for s in near for r in s.power_w)
        energy_j = {
            rail: trapezoid_j([(s.t_s, s.power_w[rail]) for s in near if rail in s.power_w], begin_s, end_s)
            for rail in rails
        }
        warnings = []
        if near[0].t_s > begin_s:
            warnings.append(
                f"the power trace starts {_seconds(near[0].t_s - begin_s)} s after the window begins; "
                "its first reading was held back to the window start"
            )
        if near[-1].t_s < end_s:
            warnings.append(
                f"the power trace ends {_seconds(end_s - near[-1].t_s)} s before the window ends; "
                "its last reading was held to the window end"
            )
        return energy_j, n_inside, warnings


class SamplingMeter(EnergyMeter):
    """Base for meters over instantaneous power: subclasses implement :meth:`_read_power_w`."""

    def __init__(
        self,
        *,
        period_s: float,
        clock: Clock = time.monotonic,
        min_window_s: float = 1.0,
        sample_edges: bool = True,
        autostart: bool = True,
    ) -> None:
        super().__init__(clock=clock, min_window_s=min_window_s)
        self.sample_period_s = period_s
        self.sample_edges = sample_edges
        self.autostart = autostart
        self.sampler = PowerSampler(self._read_power_w, period_s=period_s, clock=clock)

    @abstractmethod
    def _read_power_w(self) -> dict[str, float]:
        """Instantaneous power per rail in watts; an empty dict when there is no reading yet."""

    def _read_counters_j(self) -> dict[str, float]:
        raise NotImplementedError("a sampling meter integrates its power trace; it has no counters")

    def start(self) -> None:
        if self.available:
            self.sampler.start()

    def close(self) -> None:
        self.sampler.stop()

    def begin_window(self, name: str) -> None:
        if self.autostart:
            self.start()
        super().begin_window(name)

    def power_trace(self, window: EnergyWindow) -> list[tuple[float, float]]:
        """The samples inside the window as ``(seconds from its start, total watts)``, thinned to 2000."""
        if not self.available or window.begin_s is None:
            return []
        begin, end = window.begin_s, window.begin_s + window.duration_s
        points = []
        for s in self.sampler.samples:
            if begin <= s.t_s <= end and (total := self._total_j(s.power_w)) is not None:
                points.append((s.t_s - begin, total))  # _total_j sums rails the same way for watts
        return bounded_trace(points)

    def _edge(self) -> tuple[float, Any]:
        """The edge's time (a fresh reading's timestamp when possible) and the failure count."""
        if self.available and self.sample_edges:
            sample = self.sampler.sample_once()
            if sample is not None:
                return sample.t_s, self.sampler.failed_reads
        return self._clock(), self.sampler.failed_reads

    def _window_energy_j(
        self, begin_s: float, begin: Any, end_s: float, end: Any
    ) -> tuple[dict[str, float], list[str], int | None]:
        if not self.available:
            return {}, [], None
        energy_j, n_inside, warnings = self.sampler.integrate(begin_s, end_s)
        warnings = self._short_window_warning(end_s - begin_s, "sampling error") + warnings
        if n_inside < 2 and energy_j:
            warnings.append(
                f"only {n_inside} power sample(s) inside the window; its energy rests on readings "
                "outside it"
            )
        achieved_s = (end_s - begin_s) / max(n_inside - 1, 1)
        if self.sampler.running and n_inside >= 2 and achieved_s > 2 * self.sampler.period_s:
            warnings.append(
                f"the sampler fell behind: one sample every {_seconds(achieved_s)} s on average, "
                f"against a period of {_seconds(self.sampler.period_s)} s"
            )
        if failed := end - begin:
            warnings.append(
                f"{failed} background power read(s) failed during the window "
                f"(last: {self.sampler.last_error})"
            )
        return energy_j, warnings, n_inside
