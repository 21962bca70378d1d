"""The Jetson INA3221 meter against fake sysfs trees built under tmp_path from tests/data/sysfs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.meters.base import SCOPES
from harness.meters.jetson import JetsonMeter
from harness.meters.rails import RAIL_MAP, board_rails, read_board_model
from tests.fakes import FakeClock

DATA = Path(__file__).parent / "data" / "sysfs"
HWMON_3221 = "bus/i2c/drivers/ina3221"


def build_tree(tmp_path: Path, description: str) -> tuple[Path, Path]:
    """Write a fake /sys from a JSON description; returns (sysfs_root, device-tree model file)."""
    spec = json.loads((DATA / description).read_text())
    sysfs = tmp_path / "sys"
    for rel, text in spec["files"].items():
        path = sysfs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{text}\n")
    model = tmp_path / "model"
    model.write_bytes(spec["model"].encode() + b"\x00")  # device-tree strings end in NUL
    return sysfs, model


def run_window(meter: JetsonMeter, clock: FakeClock, seconds: int, between=None):
    """Begin a window, take one sample per second (calling ``between(t)`` first), end it."""
    meter.begin_window("run")
    for t in range(1, seconds):
        clock.advance(1.0)
        if between:
            between(t)
        meter.sampler.sample_once()
    clock.advance(1.0)
    return meter.end_window("run")


def test_agx_orin_two_monitors_yield_four_rails_without_nc_or_shunt_sum(tmp_path: Path) -> None:
    sysfs, model = build_tree(tmp_path, "agx_orin_jp6_hwmon.json")
    meter = JetsonMeter(sysfs, model_file=model, autostart=False)
    assert meter.available and meter.board_model == "NVIDIA Jetson AGX Orin Developer Kit"
    assert meter.rails == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]
    assert meter._read_power_w() == pytest.approx(  # mV x mA / 1e6
        {"VDD_GPU_SOC": 2.34, "VDD_CPU_CV": 0.39, "VIN_SYS_5V0": 4.025, "VDDQ_VDD2_1V8AO": 0.3}
    )


def test_agx_orin_total_is_partial_sum_leaving_out_carrier_rail(tmp_path: Path) -> None:
    sysfs, model = build_tree(tmp_path, "agx_orin_jp6_hwmon.json")
    clock = FakeClock()
    meter = JetsonMeter(sysfs, model_file=model, clock=clock, autostart=False, min_window_s=0.0, period_s=0.01)
    window = run_window(meter, clock, seconds=10)
    assert window.energy_j["VIN_SYS_5V0"] == pytest.approx(40.25)  # reported per rail ...
    assert window.total_energy_j == pytest.approx((2.34 + 0.39 + 0.3) * 10)  # ... but not summed
    assert window.scope == "soc-rails"
    assert window.source == "ina3221-hwmon:partial-sum(VDD_GPU_SOC+VDD_CPU_CV+VDDQ_VDD2_1V8AO)"
    assert window.n_samples == 11


def test_hwmon_update_interval_sets_sensor_period_and_minimum_window(tmp_path: Path) -> None:
    sysfs, model = build_tree(tmp_path, "agx_orin_jp6_hwmon.json")  # update_interval = 200 ms
    clock = FakeClock()
    meter = JetsonMeter(sysfs, model_file=model, clock=clock, autostart=False)
    window = run_window(meter, clock, seconds=10)
    assert (meter.sensor_period_s, meter.required_window_s) == (0.2, 20.0)
    assert window.warnings == [
        "window of 10.0 s is shorter than the 20.0 s minimum for this meter "
        "(100 x its 0.2 s sensor update period); energy may be dominated by sampling error"
    ]


def test_orin_nano_total_is_vdd_in_alone_and_follows_a_power_step(tmp_path: Path) -> None:
    sysfs, model = build_tree(tmp_path, "orin_nano_jp6_hwmon.json")
    clock = FakeClock()
    meter = JetsonMeter(sysfs, model_file=model, clock=clock, autostart=False, min_window_s=0.0, period_s=0.01)

    def step(t: int) -> None:
        if t == 3:  # VDD_IN doubles from 4.935 W to 9.87 W between the 2 s and 3 s samples
            (sysfs / HWMON_3221 / "1-0040/hwmon/hwmon1/curr1_input").write_text("1974\n")

    window = run_window(meter, clock, seconds=4, between=step)
    assert window.energy_j["VDD_IN"] == pytest.approx(4.935 * 2 + (4.935 + 9.87) / 2 + 9.87)
    assert window.total_energy_j == pytest.approx(window.energy_j["VDD_IN"])
    assert (window.scope, window.source) == ("module", "ina3221-hwmon:VDD_IN")
    assert window.warnings == []


def test_nano_jp4_iio_layout_prefers_in_power_and_does_not_sum_subset_rails(tmp_path: Path) -> None:
    sysfs, model = build_tree(tmp_path, "nano_jp4_iio.json")
    clock = FakeClock()
    meter = JetsonMeter(sysfs, model_file=model, clock=clock, autostart=False, min_window_s=0.0, period_s=0.01)
    assert meter._read_power_w() == pytest.approx({"POM_5V_IN": 2.371, "POM_5V_GPU": 0.789, "POM_5V_CPU": 0.702})
    window = run_window(meter, clock, seconds=5)
    assert window.total_energy_j == pytest.approx(2.371 * 5)
    assert (window.scope, window.source) == ("module", "ina3221-iio:POM_5V_IN")


def test_iio_without_power_files_multiplies_voltage_and_current_across_two_monitors(tmp_path: Path) -> None:
    sysfs, model = build_tree(tmp_path, "tx2_jp4_iio_no_power.json")
    meter = JetsonMeter(sysfs, model_file=model, autostart=False)
    power_w = meter._read_power_w()
    assert power_w["VDD_IN"] == pytest.approx(19000 * 165 / 1e6)
    assert power_w["VDD_SYS_GPU"] == pytest.approx(19000 * 8 / 1e6)
    assert len(power_w) == 6


def test_board_missing_from_rail_map_uses_vdd_in_and_warns_in_every_window(tmp_path: Path) -> None:
    sysfs, model = build_tree(tmp_path, "tx2_jp4_iio_no_power.json")  # model "quill"
    clock = FakeClock()
    meter = JetsonMeter(sysfs, model_file=model, clock=clock, autostart=False, min_window_s=0.0, period_s=0.01)
    window = run_window(meter, clock, seconds=2)
    assert window.total_energy_j == pytest.approx(19000 * 165 / 1e6 * 2)
    assert window.warnings == ["board model 'quill' is not in RAIL_MAP; took VDD_IN as the module input rail"]


def test_unknown_board_without_input_rail_reports_rails_but_no_total(tmp_path: Path) -> None:
    sysfs, _ = build_tree(tmp_path, "agx_orin_jp6_hwmon.json")
    clock = FakeClock()
    meter = JetsonMeter(sysfs, board_model="Custom Carrier v2", clock=clock, autostart=False, min_window_s=0.0)
    window = run_window(meter, clock, seconds=2)
    assert window.total_energy_j is None and window.energy_j["VDD_GPU_SOC"] == pytest.approx(4.68)
    assert "per-rail energy only (adding rails may double-count)" in window.warnings[0]


def test_known_board_whose_input_rail_is_missing_has_no_total(tmp_path: Path) -> None:
    sysfs, _ = build_tree(tmp_path, "agx_orin_jp6_hwmon.json")
    meter = JetsonMeter(sysfs, board_model="NVIDIA Jetson Orin NX Developer Kit", autostart=False)
    meter.begin_window("run")
    window = meter.end_window("run")
    assert window.total_energy_j is None and window.scope == "soc-rails"
    assert "should expose its module input rail VDD_IN" in window.warnings[0]


def test_thor_ina238_channel_reads_microwatts_and_is_named_by_its_monitor(tmp_path: Path) -> None:
    hwmon = tmp_path / "bus/i2c/drivers/ina238/2-0044/hwmon/hwmon7"
    hwmon.mkdir(parents=True)
    for name, value in [("name", "ina238"), ("in1_input", "19100"), ("curr1_input", "2300"),
                        ("power1_input", "43930000")]:
        (hwmon / name).write_text(f"{value}\n")
    meter = JetsonMeter(tmp_path, board_model="NVIDIA Jetson AGX Thor Developer Kit", autostart=False)
    assert meter._read_power_w() == {"ina238 2-0044": pytest.approx(43.93)}


def test_same_label_on_two_monitors_is_told_apart_by_monitor(tmp_path: Path) -> None:
    for monitor in ("1-0040", "1-0041"):
        hwmon = tmp_path / HWMON_3221 / monitor / "hwmon" / "hwmon0"
        hwmon.mkdir(parents=True)
        for name, value in [("in1_label", "VDD_IN"), ("in1_input", "5000"), ("curr1_input", "100")]:
            (hwmon / name).write_text(f"{value}\n")
    meter = JetsonMeter(tmp_path, board_model="x", autostart=False)
    assert meter.rails == ["VDD_IN (1-0040)", "VDD_IN (1-0041)"]


def test_no_ina3221_is_unavailable_with_a_reason_naming_both_layouts(tmp_path: Path) -> None:
    meter = JetsonMeter(tmp_path / "sys", model_file=tmp_path / "missing")
    assert not meter.available and meter.board_model is None
    assert "ina3221 (JetPack 5+)" in (meter.reason or "") and "ina3221x (JetPack 4)" in (meter.reason or "")
    meter.begin_window("run")
    assert meter.end_window("run").total_energy_j is None
    assert not meter.sampler.running


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_rail_file_makes_meter_unavailable(tmp_path: Path) -> None:
    sysfs, model = build_tree(tmp_path, "orin_nano_jp6_hwmon.json")
    current = sysfs / HWMON_3221 / "1-0040/hwmon/hwmon1/curr1_input"
    current.chmod(0)
    try:
        meter = JetsonMeter(sysfs, model_file=model)
    finally:
        current.chmod(0o644)
    assert not meter.available and "could not be read" in (meter.reason or "")


def test_device_tree_model_is_read_without_its_trailing_nul(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    assert read_board_model(model) == "NVIDIA Jetson AGX Orin Developer Kit"
    assert read_board_model(tmp_path / "absent") is None


@pytest.mark.parametrize(("model", "total_rail", "sum_rails"), [
    ("NVIDIA Jetson Nano Developer Kit", "POM_5V_IN", ()),
    ("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", "VDD_IN", ()),
    ("NVIDIA Jetson Orin NX Engineering Reference Developer Kit", "VDD_IN", ()),
    ("NVIDIA Jetson Xavier NX Developer Kit", "VDD_IN", ()),
    ("NVIDIA Jetson AGX Xavier Developer Kit", None, ("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V")),
])
def test_rail_map_lookup_by_model_string(model: str, total_rail: str | None, sum_rails: tuple) -> None:
    board = board_rails(model)
    assert board is not None and (board.total_rail, board.sum_rails) == (total_rail, sum_rails)


def test_rail_map_entries_are_consistent() -> None:
    for key, board in RAIL_MAP.items():
        assert board.scope in SCOPES, key
        assert (board.total_rail is None) == bool(board.sum_rails), key
        assert board.total_rail not in board.never_sum and not set(board.sum_rails) & set(board.never_sum), key
