"""Device state from a fake sysfs tree and a fake NVML: governors, clocks, temperatures, warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.measure.device_state import Snapshot, decode_clock_events, device_state, read_nvml, snapshot


def fake_sysfs(root: Path, governor: str = "performance", temp_mc: int = 45000) -> Path:
    for i, khz in enumerate((2_400_000, 1_200_000)):
        d = root / "devices/system/cpu" / f"cpu{i}" / "cpufreq"
        d.mkdir(parents=True, exist_ok=True)
        (d / "scaling_governor").write_text(f"{governor}\n")
        (d / "scaling_cur_freq").write_text(f"{khz}\n")
        (d / "cpuinfo_max_freq").write_text("3000000\n")
    (root / "devices/system/cpu/cpufreq").mkdir(parents=True, exist_ok=True)  # not a CPU
    for i, kind in enumerate(("x86_pkg_temp", "acpitz")):
        z = root / "class/thermal" / f"thermal_zone{i}"
        z.mkdir(parents=True, exist_ok=True)
        (z / "type").write_text(f"{kind}\n")
        (z / "temp").write_text(f"{temp_mc + 1000 * i}\n")
    return root


def test_snapshot_reads_governors_clocks_and_temperatures(tmp_path):
    snap = snapshot(fake_sysfs(tmp_path))
    assert snap.cpu_governors == {"cpu0": "performance", "cpu1": "performance"}
    assert snap.cpu_freq_mhz == {"cpu0": 2400.0, "cpu1": 1200.0} and snap.cpu_max_freq_mhz["cpu1"] == 3000.0
    assert snap.temperatures_c == {"x86_pkg_temp": 45.0, "acpitz": 46.0}
    assert set(snap.unavailable_reasons) == {"gpu", "thermal_throttle"}  # no trip points in this tree
    state = device_state(snap, snap)
    assert state.warnings == []


def test_powersave_governor_and_a_thermal_rise_are_warned(tmp_path):
    before = snapshot(fake_sysfs(tmp_path / "a", "powersave", 40000))
    after = snapshot(fake_sysfs(tmp_path / "b", "powersave", 55000))
    state = device_state(before, after)
    assert "'powersave' on 2 CPU(s) (cpu0, cpu1)" in state.warnings[0]
    assert any("x86_pkg_temp rose 15.0 C" in w for w in state.warnings)
    assert state.temperatures_after_c["x86_pkg_temp"] == 55.0
    assert "schedutil" in device_state(snapshot(fake_sysfs(tmp_path / "c", "schedutil")), Snapshot()).warnings[0]


def test_missing_sysfs_gives_reasons_not_values(tmp_path):
    snap = snapshot(tmp_path / "empty")
    assert snap.cpu_governors == {} and snap.temperatures_c == {}
    assert "no cpufreq" in snap.unavailable_reasons["cpufreq"] and "thermal" in snap.unavailable_reasons


class FakeNvml:
    """The few pynvml calls the device state makes."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    class NVMLError(Exception):
        pass

    def __init__(self, reasons: int = 0, app_clock: bool = True) -> None:
        self.reasons, self.app_clock = reasons, app_clock

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, i):
        return f"gpu{i}"

    def nvmlDeviceGetClockInfo(self, h, kind):
        return {1: 1410, 2: 1215}[kind]

    def nvmlDeviceGetMaxClockInfo(self, h, kind):
        return 1980

    def nvmlDeviceGetTemperature(self, h, kind):
        return 61

    def nvmlDeviceGetApplicationsClock(self, h, kind):
        if not self.app_clock:
            raise self.NVMLError("Not Supported")
        return 1410

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h):
        return self.reasons


def test_nvml_clocks_and_throttle_reasons(tmp_path):
    gpu, reason = read_nvml(FakeNvml(reasons=0x4 | 0x1), 0)
    assert reason is None
    assert gpu == {"sm_clock_mhz": 1410, "mem_clock_mhz": 1215, "max_sm_clock_mhz": 1980, "temperature_c": 61,
                   "applications_sm_clock_mhz": 1410, "clock_event_reasons": ["gpu-idle", "sw-power-cap"]}
    before = snapshot(tmp_path, FakeNvml(reasons=0))
    after = snapshot(tmp_path, FakeNvml(reasons=0x40, app_clock=False))
    state = device_state(before, after)
    assert after.gpu["applications_sm_clock_mhz"] is None
    assert state.warnings == ["GPU clocks were held down at the end of the measurement (hw-thermal-slowdown)"]


def test_nvml_errors_and_absence_are_reasons():
    class Broken(FakeNvml):
        def nvmlInit(self):
            raise self.NVMLError("Driver Not Loaded")

    assert read_nvml(Broken(), 0) == ({}, "NVML could not be read: Driver Not Loaded")
    assert "not in use" in read_nvml(None)[1]
    assert decode_clock_events(0) == []


@pytest.mark.gpu
def test_real_nvml_reads_clocks():
    import pynvml

    gpu, reason = read_nvml(pynvml, 0)
    assert reason is None and gpu["sm_clock_mhz"] > 0


def add_trips_and_coolers(root: Path, temp_mc: int, cooler_state: int) -> Path:
    z = root / "class/thermal/thermal_zone0"
    (z / "trip_point_0_type").write_text("active\n")
    (z / "trip_point_0_temp").write_text("30000\n")  # a fan trip: not throttling
    (z / "trip_point_1_type").write_text("passive\n")
    (z / "trip_point_1_temp").write_text(f"{temp_mc}\n")
    for i, (kind, state) in enumerate((("pwm-fan", 3), ("gpu-balanced", cooler_state), ("Processor", 2))):
        d = root / "class/thermal" / f"cooling_device{i}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "type").write_text(f"{kind}\n")
        (d / "cur_state").write_text(f"{state}\n")
        (d / "max_state").write_text("10\n")
    return root


def test_thermal_throttling_from_passive_trips_and_clock_capping_coolers(tmp_path):
    cool = snapshot(add_trips_and_coolers(fake_sysfs(tmp_path / "cool"), 95000, 0))
    assert cool.thermal_throttle == [] and "thermal_throttle" not in cool.unavailable_reasons
    state = device_state(cool, cool)
    assert state.throttled is False and state.throttle_reasons == [] and state.warnings == []
    hot = snapshot(add_trips_and_coolers(fake_sysfs(tmp_path / "hot"), 45000, 4))
    assert hot.thermal_throttle == ["thermal-trip:x86_pkg_temp (45.0 C >= passive trip 45.0 C)",
                                    "cooling:gpu-balanced (state 4/10)"]  # the fan and Processor are not clocks
    state = device_state(cool, hot)
    assert state.throttled is True
    assert state.throttle_reasons == ["thermal-trip:x86_pkg_temp (45.0 C >= passive trip 45.0 C)@end",
                                      "cooling:gpu-balanced (state 4/10)@end"]
    assert any(w.startswith("thermal throttling at the end") for w in state.warnings)


def test_throttle_flag_from_nvml_reasons_and_none_without_any_source(tmp_path):
    state = device_state(snapshot(tmp_path, FakeNvml(reasons=0x1)), snapshot(tmp_path, FakeNvml(reasons=0x4 | 0x20)))
    assert state.throttled is True and state.throttle_reasons == ["gpu:sw-power-cap@end", "gpu:sw-thermal-slowdown@end"]
    idle_only = device_state(snapshot(tmp_path, FakeNvml(reasons=0x1)), snapshot(tmp_path, FakeNvml(reasons=0x2)))
    assert idle_only.throttled is False  # gpu-idle and an applications-clock setting are not throttling
    blind = device_state(snapshot(tmp_path), snapshot(tmp_path))
    assert blind.throttled is None and "neither NVML" in blind.unavailable_reasons["throttled"]
