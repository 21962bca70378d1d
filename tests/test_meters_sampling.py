"""Power-trace integration and window alignment, on synthetic traces with hand-computed joules."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from harness.errors import MeasurementError
from harness.meters.sampling import PowerSampler, SamplingMeter, trapezoid_j
from tests.fakes import FakeClock


class FakeTraceMeter(SamplingMeter):
    """Reads ``power_w(now)`` from a synthetic trace on the injected clock."""

    name = "fake-trace"
    scope = "wall"
    source = "fake-trace"

    def __init__(self, power_w: Callable[[float], float], clock: Callable[[], float], **kwargs) -> None:
        self.power_w, self.clock = power_w, clock
        kwargs.setdefault("autostart", False)
        super().__init__(period_s=kwargs.pop("period_s", 1.0), clock=clock, **kwargs)

    def _read_power_w(self) -> dict[str, float]:
        return {"rail": self.power_w(self.clock())}


def wait_until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "background sampler made no progress"
        time.sleep(0.002)


def test_constant_trace_integrates_to_power_times_duration() -> None:
    points = [(0.0, 5.0), (1.0, 5.0), (2.0, 5.0), (3.0, 5.0)]
    assert trapezoid_j(points, 0.5, 2.5) == pytest.approx(10.0)


def test_ramp_is_integrated_exactly_including_interpolated_window_edges() -> None:
    points = [(t, 2.0 * t) for t in (0.0, 1.0, 2.0, 3.0, 4.0)]  # P = 2t W, so E = t^2 J
    assert trapezoid_j(points, 1.0, 3.0) == pytest.approx(9.0 - 1.0)
    assert trapezoid_j(points, 0.5, 3.5) == pytest.approx(3.5**2 - 0.5**2)


def test_step_is_linear_between_the_samples_either_side_of_it() -> None:
    points = [(0.0, 10.0), (1.0, 10.0), (2.0, 20.0), (3.0, 20.0)]
    assert trapezoid_j(points, 0.0, 3.0) == pytest.approx(10.0 + 15.0 + 20.0)
    # edge at 1.5 s interpolates 15 W: (15 + 20) / 2 * 0.5 s + 20 W * 1 s
    assert trapezoid_j(points, 1.5, 3.0) == pytest.approx(8.75 + 20.0)


def test_trace_is_held_flat_beyond_its_first_and_last_sample() -> None:
    assert trapezoid_j([(1.0, 4.0), (2.0, 4.0)], 0.0, 3.0) == pytest.approx(12.0)
    assert trapezoid_j([(1.0, 4.0)], 0.0, 3.0) == pytest.approx(12.0)
    assert trapezoid_j([], 0.0, 3.0) == 0.0


def test_window_edges_between_samples_are_read_at_the_edges_and_integrated() -> None:
    clock = FakeClock()
    meter = FakeTraceMeter(lambda t: 10.0 if t < 2.0 else 20.0, clock)
    meter.sampler.sample_once()  # t = 0
    clock.advance(0.5)
    meter.begin_window("run")  # edge reading at 0.5 s
    for _ in range(3):  # background-period samples at 1, 2, 3 s
        clock.advance(0.5 if clock() == 0.5 else 1.0)
        meter.sampler.sample_once()
    clock.advance(0.5)
    window = meter.end_window("run")  # edge reading at 3.5 s
    # (0.5..1: 10 W) 5 J + (1..2: 10->20 W) 15 J + (2..3: 20 W) 20 J + (3..3.5: 20 W) 10 J
    assert window.energy_j == {"rail": pytest.approx(50.0)}
    assert window.total_energy_j == pytest.approx(50.0)
    assert (window.duration_s, window.n_samples, window.sample_period_s) == (pytest.approx(3.0), 5, 1.0)


def test_overlapping_windows_integrate_their_own_intervals_of_one_trace() -> None:
    clock = FakeClock()
    meter = FakeTraceMeter(lambda t: 5.0, clock)
    meter.begin_window("outer")
    clock.advance(1.0)
    meter.begin_window("inner")
    clock.advance(2.0)
    inner = meter.end_window("inner")
    clock.advance(1.0)
    outer = meter.end_window("outer")
    assert (inner.total_energy_j, outer.total_energy_j) == (pytest.approx(10.0), pytest.approx(20.0))


def test_window_shorter_than_100_sensor_periods_warns_and_long_window_does_not() -> None:
    clock = FakeClock()
    meter = FakeTraceMeter(lambda t: 1.0, clock, period_s=0.05, min_window_s=1.0)
    meter.sensor_period_s = 0.05
    assert meter.required_window_s == pytest.approx(5.0)
    meter.begin_window("short")
    clock.advance(2.0)
    short = meter.end_window("short")
    meter.begin_window("long")
    clock.advance(5.0)
    long = meter.end_window("long")
    assert short.warnings == [
        "window of 2.0 s is shorter than the 5.0 s minimum for this meter "
        "(100 x its 0.05 s sensor update period); energy may be dominated by sampling error"
    ]
    assert long.warnings == []


def test_window_with_fewer_than_two_samples_inside_warns_and_uses_neighbours() -> None:
    clock = FakeClock()
    meter = FakeTraceMeter(lambda t: t, clock, sample_edges=False, min_window_s=0.0)
    meter.sampler.sample_once()  # (0 s, 0 W)
    clock.advance(2.0)
    meter.begin_window("run")
    clock.advance(2.0)
    window = meter.end_window("run")
    clock.advance(6.0)
    meter.sampler.sample_once()  # (10 s, 10 W): the only neighbour after the window
    late = meter.sampler.integrate(2.0, 4.0)
    assert window.n_samples == 0
    assert "only 0 power sample(s) inside the window" in window.warnings[-1]
    assert "trace ends 4.0 s before the window ends" in window.warnings[0]
    assert late == ({"rail": pytest.approx(6.0)}, 0, [])  # interpolated 2 W .. 4 W over 2 s


def test_window_without_any_sample_has_no_energy_and_says_so() -> None:
    clock = FakeClock()
    meter = FakeTraceMeter(lambda t: 1.0, clock, sample_edges=False, min_window_s=0.0)
    meter.begin_window("run")
    clock.advance(1.0)
    window = meter.end_window("run")
    assert (window.energy_j, window.total_energy_j) == ({}, None)
    assert window.warnings == ["no power samples were taken; the window has no energy"]


def test_empty_reading_is_not_recorded_as_a_sample() -> None:
    sampler = PowerSampler(lambda: {}, period_s=1.0, clock=FakeClock())
    assert sampler.sample_once() is None
    assert sampler.samples == []


def test_failing_edge_reading_raises_measurement_error() -> None:
    def broken() -> dict[str, float]:
        raise OSError("sensor gone")

    meter = FakeTraceMeter(lambda t: 1.0, FakeClock())
    meter.sampler.read_power_w = broken
    with pytest.raises(MeasurementError, match="sensor gone"):
        meter.begin_window("run")


def test_clock_going_backwards_is_refused() -> None:
    clock = FakeClock(10.0)
    sampler = PowerSampler(lambda: {"rail": 1.0}, period_s=1.0, clock=clock)
    sampler.sample_once()
    clock.advance(-1.0)
    with pytest.raises(MeasurementError, match="backwards"):
        sampler.sample_once()


def test_background_loop_samples_at_its_period_and_stops() -> None:
    sampler = PowerSampler(lambda: {"rail": 1.0}, period_s=0.002)
    sampler.start()
    assert sampler.running
    wait_until(lambda: len(sampler.samples) >= 5)
    sampler.stop()
    n = len(sampler.samples)
    time.sleep(0.01)
    assert not sampler.running and len(sampler.samples) == n
    times = [s.t_s for s in sampler.samples]
    assert times == sorted(times)


def test_background_read_failures_are_counted_and_reported_in_the_window() -> None:
    calls = iter(range(10**6))

    def flaky() -> dict[str, float]:
        if next(calls) % 2:
            raise OSError("i2c timeout")
        return {"rail": 2.0}

    meter = FakeTraceMeter(lambda t: 2.0, time.monotonic, period_s=0.002, sample_edges=False, autostart=True)
    meter.sampler.read_power_w = flaky
    with meter:
        meter.begin_window("run")
        wait_until(lambda: meter.sampler.failed_reads >= 2 and len(meter.sampler.samples) >= 2)
        window = meter.end_window("run")
    assert not meter.sampler.running
    assert any("background power read(s) failed during the window (last: " in w and "i2c timeout" in w
               for w in window.warnings)


def test_running_sampler_that_falls_behind_its_period_is_reported() -> None:
    clock = FakeClock()
    meter = FakeTraceMeter(lambda t: 1.0, clock, period_s=100.0, min_window_s=0.0)
    meter.start()  # the loop samples once, then waits 100 s of real time
    wait_until(lambda: len(meter.sampler.samples) == 1)
    meter.begin_window("run")
    clock.advance(1000.0)
    window = meter.end_window("run")
    meter.close()
    # samples at 0 s (loop), 0 s (begin edge) and 1000 s (end edge): 2 intervals in 1000 s
    assert window.warnings == [
        "the sampler fell behind: one sample every 500.0 s on average, against a period of 100.0 s"
    ]


def test_unavailable_sampling_meter_records_nothing_and_never_starts() -> None:
    meter = FakeTraceMeter(lambda t: 1.0, FakeClock(), autostart=True)
    meter.available, meter.reason = False, "no sensor"
    meter.begin_window("run")
    window = meter.end_window("run")
    assert (window.energy_j, window.total_energy_j, window.warnings) == ({}, None, [])
    assert not meter.sampler.running and meter.sampler.samples == []
