"""The external (wall) meter fed by a real command or a log file, on a fake clock."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from harness.errors import ConfigError, MeasurementError
from harness.meters.external import ExternalMeter, parse_watts
from tests.fakes import FakeClock


@pytest.mark.parametrize(("text", "watts"), [
    ("6.02\n", 6.02),
    ("6.02 W", 6.02),
    ("2025-01-01T10:00:00,5.02 V,1.20 A,6.02 W\n", 6.02),
    ("power: 6020 mW", 6.02),
    ("first 1 W\nlast 7.5W\n\n", 7.5),
    ("12.0 Wh 3.5", 3.5),  # watt-hours are not watts
])
def test_watts_are_the_last_unit_tagged_number_of_the_last_line(text: str, watts: float) -> None:
    assert parse_watts(text) == pytest.approx(watts)


@pytest.mark.parametrize("text", ["", "\n\n", "no numbers here"])
def test_output_without_a_number_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_watts(text)


def test_command_meter_integrates_readings_as_wall_scope(tmp_path: Path) -> None:
    reading = tmp_path / "reading"
    reading.write_text("12.5 W\n")
    command = [sys.executable, "-c", f"print(open({str(reading)!r}).read())"]
    clock = FakeClock()
    meter = ExternalMeter(command, clock=clock, autostart=False, min_window_s=0.0)
    meter.begin_window("run")  # 12.5 W
    clock.advance(2.0)
    reading.write_text("20 W\n")
    window = meter.end_window("run")  # 20 W
    assert window.energy_j == {"wall": pytest.approx((12.5 + 20.0) / 2 * 2.0)}
    assert (window.scope, window.source, window.sample_period_s) == ("wall", "external-command", 1.0)


def test_file_meter_reads_the_last_complete_line_of_a_growing_log(tmp_path: Path) -> None:
    log = tmp_path / "usb-meter.csv"
    log.write_text("time,volts,amps,watts\n0,5.0,1.0,5.0 W\n")
    clock = FakeClock()
    meter = ExternalMeter(file=log, clock=clock, autostart=False, min_window_s=0.0)
    meter.begin_window("run")  # 5 W
    with log.open("a") as f:
        f.write("1,5.0,2.0,10.0 W\n2,5.0,3.0,15")  # a line still being written is ignored
    clock.advance(4.0)
    window = meter.end_window("run")  # 10 W
    assert window.total_energy_j == pytest.approx((5.0 + 10.0) / 2 * 4.0)
    assert (window.scope, window.source) == ("wall", "external-file")


def test_stale_log_file_is_unavailable_at_start_and_an_error_mid_run(tmp_path: Path) -> None:
    log = tmp_path / "usb-meter.log"
    log.write_text("5.0\n")
    hour_ago = time.time() - 3600
    os.utime(log, (hour_ago, hour_ago))
    stale = ExternalMeter(file=log)
    assert not stale.available and "last written" in (stale.reason or "")
    log.write_text("5.0\n")
    meter = ExternalMeter(file=log, autostart=False)
    os.utime(log, (hour_ago, hour_ago))
    with pytest.raises(MeasurementError, match="is the logger still running"):
        meter.begin_window("run")


def test_failing_command_is_unavailable_with_its_exit_status_and_stderr() -> None:
    meter = ExternalMeter([sys.executable, "-c", "import sys; sys.exit('meter unplugged')"])
    assert not meter.available
    assert "exited with 1" in (meter.reason or "") and "meter unplugged" in (meter.reason or "")


def test_missing_command_or_file_is_unavailable_not_an_exception(tmp_path: Path) -> None:
    assert "gave no reading" in (ExternalMeter("no-such-usb-meter-tool --watts").reason or "")
    assert "gave no reading" in (ExternalMeter(file=tmp_path / "absent.log").reason or "")
    assert "no external meter configured" in (ExternalMeter().reason or "")


def test_command_and_file_together_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        ExternalMeter("echo 1", file=tmp_path / "x")


def test_default_minimum_window_is_100_logger_periods() -> None:
    meter = ExternalMeter([sys.executable, "-c", "print(1)"], period_s=0.5, autostart=False)
    assert meter.required_window_s == 50.0
