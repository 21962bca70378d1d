"""Energy meters against fake powercap trees under tmp_path and a fake clock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import MeasurementError
from harness.meters import METERS, detect_cpu_meter
from harness.meters.base import EnergyWindow, NullMeter, energy_stats
from harness.meters.rapl import RaplMeter
from tests.fakes import FakeClock

RANGE_UJ = 262_143_328_850  # a real max_energy_range_uj value


def add_domain(root: Path, zone: str, name: str, energy_uj: int, range_uj: int = RANGE_UJ) -> None:
    d = root / zone
    d.mkdir(parents=True)
    (d / "name").write_text(f"{name}\n")
    (d / "max_energy_range_uj").write_text(f"{range_uj}\n")
    set_energy(root, zone, energy_uj)


def set_energy(root: Path, zone: str, energy_uj: int) -> None:
    (root / zone / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def one_package(tmp_path: Path) -> Path:
    add_domain(tmp_path, "intel-rapl:0", "package-0", 5_000_000)
    return tmp_path


def test_window_energy_is_end_minus_begin_counter_in_joules(one_package: Path) -> None:
    meter = RaplMeter(one_package, clock=FakeClock(100.0))
    meter.begin_window("run")
    set_energy(one_package, "intel-rapl:0", 5_000_000 + 12_500_000)
    window = meter.end_window("run")
    assert window.energy_j == {"package-0": pytest.approx(12.5)}
    assert window.total_energy_j == pytest.approx(12.5)
    assert (window.scope, window.source) == ("cpu-package", "rapl-counter")


def test_counter_wraparound_adds_max_energy_range(tmp_path: Path) -> None:
    add_domain(tmp_path, "intel-rapl:0", "package-0", energy_uj=RANGE_UJ - 1_000_000)
    meter = RaplMeter(tmp_path, clock=FakeClock(100.0))
    meter.begin_window("run")
    set_energy(tmp_path, "intel-rapl:0", 3_000_000)  # wrapped past the range
    window = meter.end_window("run")
    assert window.total_energy_j == pytest.approx(4.0)


def test_total_sums_packages_only_while_subdomains_and_psys_are_reported_per_rail(tmp_path: Path) -> None:
    add_domain(tmp_path, "intel-rapl:0", "package-0", 0)
    add_domain(tmp_path, "intel-rapl:0:0", "core", 0)
    add_domain(tmp_path, "intel-rapl:0:1", "dram", 0)
    add_domain(tmp_path, "intel-rapl:1", "package-1", 0)
    add_domain(tmp_path, "intel-rapl:1:0", "core", 0)
    add_domain(tmp_path, "intel-rapl:2", "psys", 0)
    meter = RaplMeter(tmp_path, clock=FakeClock(100.0))
    meter.begin_window("run")
    for zone, uj in [("intel-rapl:0", 10e6), ("intel-rapl:0:0", 6e6), ("intel-rapl:0:1", 2e6),
                     ("intel-rapl:1", 20e6), ("intel-rapl:1:0", 15e6), ("intel-rapl:2", 40e6)]:
        set_energy(tmp_path, zone, int(uj))
    window = meter.end_window("run")
    assert window.energy_j == pytest.approx({
        "package-0": 10.0, "package-0/core": 6.0, "package-0/dram": 2.0,
        "package-1": 20.0, "package-1/core": 15.0, "psys": 40.0,
    })
    assert window.total_energy_j == pytest.approx(30.0)


def test_two_open_windows_each_measure_their_own_interval(one_package: Path) -> None:
    clock = FakeClock(100.0)
    meter = RaplMeter(one_package, clock=clock)
    meter.begin_window("outer")
    set_energy(one_package, "intel-rapl:0", 7_000_000)
    clock.advance(2.0)
    meter.begin_window("inner")
    set_energy(one_package, "intel-rapl:0", 10_000_000)
    clock.advance(3.0)
    inner = meter.end_window("inner")
    outer = meter.end_window("outer")
    assert (inner.total_energy_j, inner.duration_s) == (pytest.approx(3.0), pytest.approx(3.0))
    assert (outer.total_energy_j, outer.duration_s) == (pytest.approx(5.0), pytest.approx(5.0))


def test_ending_a_window_that_was_never_begun_raises_measurement_error(one_package: Path) -> None:
    meter = RaplMeter(one_package)
    meter.begin_window("a")
    with pytest.raises(MeasurementError, match="'b' was never begun"):
        meter.end_window("b")
    meter.end_window("a")
    with pytest.raises(MeasurementError):
        meter.end_window("a")  # a window ends once


def test_beginning_a_window_that_is_already_open_raises(one_package: Path) -> None:
    meter = RaplMeter(one_package)
    meter.begin_window("a")
    with pytest.raises(MeasurementError, match="already open"):
        meter.begin_window("a")


def test_missing_powercap_root_gives_null_meter_whose_reason_names_the_path(tmp_path: Path) -> None:
    root = tmp_path / "no-powercap"
    meter = detect_cpu_meter(root)
    assert isinstance(meter, NullMeter)
    assert not meter.available
    assert str(root) in (meter.reason or "")


def test_powercap_root_without_a_package_domain_gives_null_meter(tmp_path: Path) -> None:
    add_domain(tmp_path, "intel-rapl:0", "psys", 0)
    meter = detect_cpu_meter(tmp_path)
    assert isinstance(meter, NullMeter)
    assert "no RAPL package domain" in (meter.reason or "")


def test_readable_package_counter_is_detected_as_rapl_meter(one_package: Path) -> None:
    meter = detect_cpu_meter(one_package)
    assert isinstance(meter, RaplMeter)
    assert meter.available and meter.reason is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_energy_uj_makes_meter_unavailable_with_root_hint(one_package: Path) -> None:
    energy_file = one_package / "intel-rapl:0" / "energy_uj"
    energy_file.chmod(0)
    try:
        rapl = RaplMeter(one_package)
        detected = detect_cpu_meter(one_package)
    finally:
        energy_file.chmod(0o644)
    assert not rapl.available
    assert "needs root" in (rapl.reason or "") and str(energy_file) in (rapl.reason or "")
    assert isinstance(detected, NullMeter) and detected.reason == rapl.reason


def test_window_duration_comes_from_the_injected_clock(one_package: Path) -> None:
    clock = FakeClock(start_s=50.0)
    meter = RaplMeter(one_package, clock=clock)
    meter.begin_window("run")
    clock.advance(12.25)
    assert meter.end_window("run").duration_s == pytest.approx(12.25)


def test_window_shorter_than_meter_minimum_warns_and_long_window_does_not(one_package: Path) -> None:
    clock = FakeClock(100.0)
    meter = RaplMeter(one_package, clock=clock)
    meter.begin_window("short")
    clock.advance(0.2)
    short = meter.end_window("short")
    meter.begin_window("long")
    clock.advance(meter.min_window_s)
    long = meter.end_window("long")
    assert short.warnings == [
        "window of 0.2 s is shorter than the 1.0 s minimum for this meter; "
        "energy may be dominated by counter resolution"
    ]
    assert long.warnings == []


def test_null_meter_window_has_no_energy_and_no_warning() -> None:
    clock = FakeClock(100.0)
    meter = NullMeter("no meter here", clock=clock)
    meter.begin_window("run")
    clock.advance(0.1)
    window = meter.end_window("run")
    assert (window.energy_j, window.total_energy_j, window.scope, window.source) == ({}, None, "none", "null")
    assert window.warnings == []


def test_energy_stats_is_total_joules_over_inferences_in_millijoules() -> None:
    meter = NullMeter()
    meter.available, meter.reason = True, None  # any available meter; the math is in energy_stats
    window = EnergyWindow("run", 10.0, {"package-0": 3.0}, 3.0, "cpu-package", "rapl-counter", None)
    stats = energy_stats(window, n_inferences=600, meter=meter)
    assert stats.energy_per_inference_mj == pytest.approx(3.0 * 1000 / 600)
    assert (stats.scope, stats.source, stats.unavailable_reason) == ("cpu-package", "rapl-counter", None)


def test_energy_stats_of_unavailable_meter_is_none_with_the_meter_reason() -> None:
    meter = NullMeter("no RAPL here")
    meter.begin_window("run")
    stats = energy_stats(meter.end_window("run"), n_inferences=10, meter=meter)
    assert (stats.energy_per_inference_mj, stats.scope, stats.source) == (None, None, None)
    assert stats.unavailable_reason == "no RAPL here"
    assert energy_stats(None, 10, meter).unavailable_reason == "no RAPL here"


def test_energy_stats_rejects_zero_inferences() -> None:
    with pytest.raises(ValueError, match="positive"):
        energy_stats(None, 0, NullMeter())


def test_registry_resolves_null_and_rapl_lazily() -> None:
    assert {"null", "rapl"} <= set(METERS.names())
    assert METERS.get("null") is NullMeter
    assert METERS.get("rapl") is RaplMeter


def test_window_shorter_than_one_sensor_update_says_it_is_not_a_measurement(one_package: Path) -> None:
    clock = FakeClock(100.0)
    meter = RaplMeter(one_package, clock=clock)
    assert meter.sensor_period_s == 0.001 and meter.required_window_s == meter.min_window_s
    meter.begin_window("blink")
    clock.advance(0.0005)
    blink = meter.end_window("blink")
    assert len(blink.warnings) == 2
    assert blink.warnings[1].startswith("window of 0.0005 s is shorter than one 0.001 s update of the rapl sensor")
