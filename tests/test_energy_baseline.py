"""Idle baseline, gross vs dynamic energy, the stored power trace and the meter choice (fakes only)."""

from __future__ import annotations

import pytest

from harness.measure.worker import idle_baseline
from harness.meters import choose_meter
from harness.meters.base import EnergyWindow, NullMeter, bounded_trace, energy_stats
from tests.fakes import FakeClock
from tests.test_meters_sampling import FakeTraceMeter


def available(name: str = "fake") -> NullMeter:
    meter = NullMeter()
    meter.available, meter.reason, meter.name = True, None, name
    return meter


def test_dynamic_energy_subtracts_idle_power_times_the_window():
    meter = available("rapl")
    idle = EnergyWindow("idle", 2.0, {"package-0": 8.0}, 8.0, "cpu-package", "rapl-counter", None)  # 4 W idle
    run = EnergyWindow("run", 10.0, {"package-0": 100.0}, 100.0, "cpu-package", "rapl-counter", None)  # 10 W
    stats = energy_stats(run, 1000, meter, idle=idle)
    assert stats.energy_per_inference_mj == pytest.approx(100.0)  # gross: 100 J / 1000
    assert stats.dynamic_energy_per_inference_mj == pytest.approx((100.0 - 4.0 * 10.0) * 1000 / 1000)
    assert (stats.idle_power_w, stats.idle_window_s, stats.window_s) == (pytest.approx(4.0), 2.0, 10.0)
    assert stats.average_power_w == pytest.approx(10.0) and stats.scope == "cpu-package" and stats.meter == "rapl"
    assert stats.dynamic_unavailable_reason is None and stats.warnings == []


def test_without_a_baseline_dynamic_energy_is_none_with_the_reason():
    run = EnergyWindow("run", 10.0, {"p": 100.0}, 100.0, "cpu-package", "rapl-counter", None)
    stats = energy_stats(run, 10, available(), idle_unavailable_reason="the idle baseline was switched off")
    assert stats.energy_per_inference_mj == pytest.approx(10_000.0)
    assert stats.dynamic_energy_per_inference_mj is None and "switched off" in stats.dynamic_unavailable_reason


def test_idle_above_load_gives_negative_dynamic_energy_with_a_warning():
    idle = EnergyWindow("idle", 1.0, {"p": 20.0}, 20.0, "wall", "x", None)
    run = EnergyWindow("run", 1.0, {"p": 10.0}, 10.0, "wall", "x", None)
    stats = energy_stats(run, 1, available(), idle=idle)
    assert stats.dynamic_energy_per_inference_mj == pytest.approx(-10_000.0)
    assert "negative" in stats.warnings[0]


def test_idle_baseline_of_a_sampling_meter_and_the_stored_trace():
    clock = FakeClock()
    meter = FakeTraceMeter(lambda t: 3.0 if t < 10 else 5.0, clock, period_s=0.5)

    def sleep(seconds: float) -> None:  # idle: the sampler ticks while the fake time passes
        for _ in range(int(seconds / 0.5)):
            clock.advance(0.5)
            meter.sampler.sample_once()

    idle, reason = idle_baseline(meter, 4.0, sleep=sleep)
    assert reason is None and idle.total_energy_j == pytest.approx(12.0)
    clock.advance(6.0)  # t = 10: the workload starts drawing 5 W
    meter.begin_window("run")
    sleep(2.0)
    run = meter.end_window("run")
    trace = meter.power_trace(run)
    assert trace[0] == (0.0, 5.0) and trace[-1] == (pytest.approx(2.0), 5.0)
    assert len(trace) == 6  # both edge readings and four ticks (the last tick and the end edge coincide)
    stats = energy_stats(run, 10, meter, idle=idle, trace=trace)
    assert stats.energy_per_inference_mj == pytest.approx(1000.0)  # 10 J / 10
    assert stats.dynamic_energy_per_inference_mj == pytest.approx((10.0 - 3.0 * 2.0) * 100.0)
    assert stats.power_trace_w == [5.0] * 6 and stats.n_power_samples == 6


def test_idle_baseline_needs_an_available_meter_and_a_positive_duration():
    assert idle_baseline(NullMeter("no RAPL"), 1.0) == (None, "no RAPL")
    window, reason = idle_baseline(available(), 0.0)
    assert window is None and "switched off" in reason


def test_bounded_trace_keeps_the_ends_and_at_most_the_limit():
    points = [(float(i), float(i)) for i in range(10_001)]
    kept = bounded_trace(points, 2000)
    assert len(kept) <= 2000 and kept[0] == points[0] and kept[-1] == points[-1]
    assert bounded_trace(points[:5], 2000) == points[:5]


class Closable(NullMeter):
    def __init__(self, name: str, ok: bool, reason: str | None = None) -> None:
        super().__init__(reason or "")
        self.name, self.available, self.reason, self.closed = name, ok, reason, False

    def close(self) -> None:
        self.closed = True


def test_auto_choice_prefers_module_rails_over_rapl_and_nvml_only_for_gpu_runtimes():
    meters = {
        "rapl": Closable("rapl", True), "nvml": Closable("nvml", True),
        "jetson": Closable("jetson", False, "not a Jetson"), "tegrastats": Closable("tegrastats", False, "absent"),
        "external": Closable("external", False, "no command"),
    }
    assert choose_meter(meters, on_gpu=True).name == "nvml"
    assert meters["rapl"].closed and not meters["nvml"].closed
    assert choose_meter(dict(meters), on_gpu=False).name == "rapl"
    meters["jetson"].available = True
    assert choose_meter(meters, on_gpu=True).name == "jetson"


def test_no_available_meter_lists_every_reason_and_a_named_choice_is_honoured():
    meters = {"rapl": Closable("rapl", False, "energy_uj is root-only"), "nvml": Closable("nvml", False, "no GPU")}
    chosen = choose_meter(meters)
    assert not chosen.available and "rapl: energy_uj is root-only" in chosen.reason
    assert choose_meter(meters, "nvml").reason == "no GPU"
    assert "switched off" in choose_meter(meters, "null").reason
