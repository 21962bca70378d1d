"""detect_meters over injected roots, and the registry of every meter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import harness.meters.nvml as nvml_module
from harness.meters import METERS, detect_meters
from harness.meters.base import NullMeter
from harness.meters.external import ExternalMeter
from harness.meters.jetson import JetsonMeter
from harness.meters.nvml import NOT_INSTALLED, NvmlMeter
from harness.meters.rapl import RaplMeter
from harness.meters.tegrastats import TegrastatsMeter


class FakeRecordingPynvml:
    """Fails nvmlInit like a host without a driver, and counts the calls."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        self.init_calls = 0

    def nvmlInit(self) -> None:
        self.init_calls += 1
        raise self.NVMLError("NVML Shared Library Not Found")


def add_rail(sysfs: Path, label: str = "VDD_IN", mv: int = 5000, ma: int = 1000) -> None:
    hwmon = sysfs / "bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
    hwmon.mkdir(parents=True)
    for name, value in [("in1_label", label), ("in1_input", mv), ("curr1_input", ma)]:
        (hwmon / name).write_text(f"{value}\n")


def test_bare_host_gets_a_null_meter_with_a_reason_for_every_source(tmp_path: Path) -> None:
    fake = FakeRecordingPynvml()
    meters = detect_meters(sysfs_root=tmp_path, model_file=tmp_path / "model", pynvml_module=fake,
                           tegrastats_command="tegrastats-absent-here")
    assert list(meters) == ["rapl", "nvml", "jetson", "tegrastats", "external"]
    assert all(isinstance(m, NullMeter) and not m.available and m.reason for m in meters.values())
    assert str(tmp_path / "class" / "powercap") in (meters["rapl"].reason or "")
    assert "NVML Shared Library Not Found" in (meters["nvml"].reason or "") and fake.init_calls == 1
    assert "no INA3221 rails" in (meters["jetson"].reason or "")
    assert "not on PATH" in (meters["tegrastats"].reason or "")
    assert "no external meter configured" in (meters["external"].reason or "")


def test_jetson_with_readable_rails_skips_tegrastats_and_keeps_other_available_meters(tmp_path: Path) -> None:
    add_rail(tmp_path)
    (tmp_path / "model").write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    log = tmp_path / "wall.log"
    log.write_text("7.5 W\n")
    meters = detect_meters(sysfs_root=tmp_path, model_file=tmp_path / "model", probe_nvml=False,
                           external_file=log)
    try:
        assert isinstance(meters["jetson"], JetsonMeter) and meters["jetson"].source == "ina3221-hwmon:VDD_IN"
        assert isinstance(meters["external"], ExternalMeter) and meters["external"].scope == "wall"
        assert "only their fallback" in (meters["tegrastats"].reason or "")
        assert "not probed" in (meters["nvml"].reason or "")
    finally:
        for meter in meters.values():
            meter.close()


def test_tegrastats_is_offered_when_sysfs_rails_are_missing(tmp_path: Path) -> None:
    meters = detect_meters(sysfs_root=tmp_path, model_file=tmp_path / "model", probe_nvml=False,
                           tegrastats_command=[sys.executable, "fake-tegrastats.py"])
    assert isinstance(meters["tegrastats"], TegrastatsMeter)
    assert meters["tegrastats"].process is not None and not meters["tegrastats"].sampler.running


def test_rapl_is_found_under_the_injected_sysfs_root(tmp_path: Path) -> None:
    zone = tmp_path / "class/powercap/intel-rapl:0"
    zone.mkdir(parents=True)
    for name, value in [("name", "package-0"), ("energy_uj", "1000"), ("max_energy_range_uj", "262143328850")]:
        (zone / name).write_text(f"{value}\n")
    meters = detect_meters(sysfs_root=tmp_path, model_file=tmp_path / "model", probe_nvml=False,
                           tegrastats_command=None)
    assert isinstance(meters["rapl"], RaplMeter)


def test_nvml_is_not_touched_unless_probed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeRecordingPynvml()
    monkeypatch.setattr(nvml_module, "pynvml", fake)
    detect_meters(sysfs_root=tmp_path, model_file=tmp_path / "model", probe_nvml=False, tegrastats_command=None)
    assert fake.init_calls == 0
    detect_meters(sysfs_root=tmp_path, model_file=tmp_path / "model", tegrastats_command=None)
    assert fake.init_calls == 1


def test_probing_nvml_without_the_package_reports_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(nvml_module, "pynvml", None)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    meters = detect_meters(sysfs_root=tmp_path, model_file=tmp_path / "model", tegrastats_command=None)
    assert meters["nvml"].reason == NOT_INSTALLED


def test_importing_meters_and_detecting_without_nvml_never_imports_pynvml(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from harness.meters import detect_meters; "
        f"detect_meters(sysfs_root=Path({str(tmp_path)!r}), probe_nvml=False, tegrastats_command=None); "
        "print(sorted(m for m in ('pynvml', 'harness.meters.nvml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_registry_resolves_every_meter_name_to_its_class() -> None:
    expected = {"nvml": NvmlMeter, "jetson": JetsonMeter, "tegrastats": TegrastatsMeter, "external": ExternalMeter,
                "rapl": RaplMeter, "null": NullMeter}
    assert set(METERS.names()) == set(expected)
    assert all(METERS.get(name) is cls for name, cls in expected.items())
