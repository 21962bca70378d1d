"""nvpmodel mode and jetson_clocks state from recorded outputs, a fake command runner and fake sysfs/etc trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.measure.device_state import device_state, snapshot
from harness.measure.jetson_state import (
    clocks_pinned,
    parse_jetson_clocks_show,
    parse_nvpmodel_query,
    read_jetson_state,
)
from harness.records import DeviceState, OperatingPoint, point_from_dict, to_dict

DATA = Path(__file__).parent / "data" / "jetson_state"


class FakeRunner:
    """Answers argv[0] from a table of (exit status, output); records every call; 127 for unknown programs."""

    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers, self.calls = answers, []

    def __call__(self, argv: list[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        return self.answers.get(" ".join(argv), (127, f"{argv[0]}: command not found"))


def recorded(name: str) -> str:
    return (DATA / name).read_text()


@pytest.mark.parametrize("name, expected", [
    ("nvpmodel_q_orin_jp6.txt", ("MAXN", 0)),
    ("nvpmodel_q_nano_jp4.txt", ("5W", 1)),
    ("nvpmodel_q_orin_nano_jp62.txt", ("MAXN_SUPER", 2)),
])
def test_nvpmodel_query_parses_name_and_id(name, expected):
    assert parse_nvpmodel_query(recorded(name)) == expected
    assert parse_nvpmodel_query("") == (None, None)


def test_jetson_clocks_show_pinned_and_dvfs():
    pinned = parse_jetson_clocks_show(recorded("jetson_clocks_show_orin_pinned.txt"))
    assert pinned["gpu"] == {"min_mhz": 1300.5, "max_mhz": 1300.5, "cur_mhz": 1300.5}
    assert pinned["cpu3"]["max_mhz"] == 2201.6 and pinned["emc"]["cur_mhz"] == 3199.0
    assert "dla0_core" not in pinned and clocks_pinned(pinned) is True
    dvfs = parse_jetson_clocks_show(recorded("jetson_clocks_show_nano_dvfs.txt"))
    assert set(dvfs) == {"cpu0", "cpu1", "gpu", "emc"}  # cpu2 is offline
    assert clocks_pinned(dvfs) is False
    assert clocks_pinned({"gpu": pinned["gpu"]}) is None


def test_state_from_nvpmodel_and_jetson_clocks(tmp_path):
    run = FakeRunner({"nvpmodel -q": (0, recorded("nvpmodel_q_orin_jp6.txt")),
                      "jetson_clocks --show": (0, recorded("jetson_clocks_show_orin_pinned.txt"))})
    state = read_jetson_state(run, tmp_path / "sys", tmp_path)
    assert (state.power_mode, state.power_mode_id, state.power_mode_source) == ("MAXN", 0, "nvpmodel -q")
    assert state.jetson_clocks_active is True and state.jetson_clocks_source == "jetson_clocks --show"
    assert state.unavailable_reasons == {}


def fake_jetson_tree(root: Path, *, pinned: bool) -> Path:
    (root / "var/lib/nvpmodel").mkdir(parents=True)
    (root / "var/lib/nvpmodel/status").write_text("pmode:0002 fmode:quiet\n")
    (root / "etc").mkdir()
    (root / "etc/nvpmodel.conf").write_text(
        "< POWER_MODEL ID=0 NAME=MAXN >\nCPU_ONLINE CORE_0 1\n< POWER_MODEL ID=2 NAME=15W >\nGPU MAX_FREQ 612000000\n")
    for i in range(2):
        d = root / "sys/devices/system/cpu" / f"cpu{i}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_min_freq").write_text("1497600\n" if pinned else "115200\n")
        (d / "scaling_max_freq").write_text("1497600\n")
        (d / "scaling_cur_freq").write_text("1497600\n")
    g = root / "sys/class/devfreq/17000000.ga10b"
    g.mkdir(parents=True)
    (g / "min_freq").write_text("612000000\n" if pinned else "306000000\n")
    (g / "max_freq").write_text("612000000\n")
    (g / "cur_freq").write_text("612000000\n")
    (root / "sys/class/devfreq/3d00000.host1x").mkdir()  # not the GPU
    return root


@pytest.mark.parametrize("pinned", [True, False])
def test_fallbacks_to_nvpmodel_files_and_sysfs_without_root(tmp_path, pinned):
    root = fake_jetson_tree(tmp_path, pinned=pinned)
    run = FakeRunner({"nvpmodel -q": (1, "NVPM ERROR: failed to open /dev/..."),
                      "jetson_clocks --show": (1, "Error: jetson_clocks must be run as root")})
    state = read_jetson_state(run, root / "sys", root)
    assert (state.power_mode, state.power_mode_id, state.power_mode_source) == ("15W", 2, "/var/lib/nvpmodel/status")
    assert state.jetson_clocks_source == "sysfs" and state.jetson_clocks_active is pinned
    assert state.clocks["gpu"]["max_mhz"] == 612.0
    assert state.unavailable_reasons == {}


def test_not_a_jetson_gives_reasons_and_runs_nothing_more(tmp_path):
    run = FakeRunner({})
    state = read_jetson_state(run, tmp_path / "sys", tmp_path)
    assert state.power_mode is None and state.jetson_clocks_active is None
    assert "nvpmodel is not installed" in state.unavailable_reasons["power_mode"]
    assert "not taken for a Jetson" in state.unavailable_reasons["jetson_clocks"]
    assert run.calls == [["nvpmodel", "-q"]]


def test_device_state_records_mode_and_warns_against_the_target_default(tmp_path):
    root = fake_jetson_tree(tmp_path, pinned=False)
    run = FakeRunner({})
    snap = snapshot(root / "sys", jetson_reader=lambda: read_jetson_state(run, root / "sys", root))
    state = device_state(snap, snap, expected_power_mode="MAXN")
    assert (state.power_mode, state.power_mode_id, state.expected_power_mode) == ("15W", 2, "MAXN")
    assert state.jetson_clocks_active is False and state.jetson_clocks["source"] == "sysfs"
    assert any("not the target profile's default MAXN" in w for w in state.warnings)
    assert any("jetson_clocks is not active" in w for w in state.warnings)
    assert not any(k.startswith("jetson.") for k in state.unavailable_reasons)  # the fallbacks had it all
    same = device_state(snap, snap, expected_power_mode="15w")
    assert not any("default" in w for w in same.warnings)


def test_device_state_without_a_jetson_reader_and_old_records_still_load(tmp_path):
    state = device_state(snapshot(tmp_path), snapshot(tmp_path), expected_power_mode="MAXN")
    assert state.power_mode is None and state.jetson_clocks == {} and not any("power mode" in w for w in state.warnings)
    old = {k: v for k, v in to_dict(state).items() if k not in {"power_mode", "power_mode_id", "expected_power_mode",
                                                                 "jetson_clocks_active", "jetson_clocks"}}
    point = point_from_dict({"point_id": "p", "variant_id": "v", "variant_name": "dense", "runtime": "onnxruntime",
                             "batch_size": 1, "prune_method": "none", "prune_amount": 0.0, "precision": "fp32",
                             "status": "ok", "device_state": old})
    assert isinstance(point, OperatingPoint) and isinstance(point.device_state, DeviceState)
    assert point.device_state.power_mode is None
