"""``detect_target`` on fake roots (device-tree files of several boards, cpuinfo, nvidia-smi output)
and the ``harness targets list | show | detect`` commands."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import DeviceUnavailable
from harness.targets import detect_target, parse_nvidia_smi
from tests.test_tensorrt_fake import DATA

X86_CPUINFO = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx2 fma f16c avx512f avx512_vnni\n"
ARM_CPUINFO = "processor\t: 0\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd evtstrm aes crc32 asimddp\nCPU implementer\t: 0x41\n"
MEMINFO = "MemTotal:       64335836 kB\nMemFree:        60000000 kB\n"

BOARDS = {  # /proc/device-tree/model, /proc/device-tree/compatible (NUL-separated), expected profile
    "agx-orin": ("NVIDIA Jetson AGX Orin Developer Kit", "nvidia,p3737-0000+p3701-0005\0nvidia,p3701-0005\0nvidia,tegra234",
                 "jetson-agx-orin"),
    "orin-nx": ("NVIDIA Jetson Orin NX Engineering Reference Developer Kit", "nvidia,p3768-0000+p3767-0000\0"
                "nvidia,p3767-0000\0nvidia,tegra234", "jetson-orin-nx"),
    "orin-nano": ("NVIDIA Jetson Orin Nano Developer Kit", "nvidia,p3768-0000+p3767-0005\0nvidia,p3767-0005\0"
                  "nvidia,tegra234", "jetson-orin-nano"),
    "agx-xavier": ("Jetson-AGX", "nvidia,p2972-0000\0nvidia,p2888-0001\0nvidia,tegra194", "jetson-agx-xavier"),
    "xavier-nx": ("NVIDIA Jetson Xavier NX Developer Kit", "nvidia,p3449-0000+p3668-0001\0nvidia,tegra194",
                  "jetson-xavier-nx"),
    "nano": ("NVIDIA Jetson Nano Developer Kit", "nvidia,p3449-0000-b00+p3448-0000-b00\0nvidia,jetson-nano\0"
             "nvidia,tegra210", "jetson-nano"),
}


def fake_roots(tmp_path, model=None, compatible=None, cpuinfo=ARM_CPUINFO):
    dt, proc = tmp_path / "device-tree", tmp_path / "proc"
    dt.mkdir()
    proc.mkdir()
    if model is not None:
        (dt / "model").write_bytes(model.encode() + b"\0")
    if compatible is not None:
        (dt / "compatible").write_bytes(compatible.encode() + b"\0")
    (proc / "cpuinfo").write_text(cpuinfo)
    (proc / "meminfo").write_text(MEMINFO)
    return dt, proc


def no_gpu():
    return None


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_each_jetson_board_is_detected_from_its_device_tree_model(tmp_path, board):
    model, compatible, expected = BOARDS[board]
    dt, proc = fake_roots(tmp_path, model, compatible)
    found = detect_target(dt, proc, nvidia_smi=no_gpu)
    assert found.target == expected and found.board_model == model and found.cpu_arch == "aarch64"
    assert found.memory_gb == 61.4


def test_orin_nano_is_not_mistaken_for_the_older_nano_or_orin_nx(tmp_path):
    dt, proc = fake_roots(tmp_path, "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super")
    assert detect_target(dt, proc, nvidia_smi=no_gpu).target == "jetson-orin-nano"


def test_a_board_with_an_unfamiliar_model_string_is_detected_from_compatible(tmp_path):
    dt, proc = fake_roots(tmp_path, "Custom carrier rev B", "acme,carrier\0nvidia,p3701-0004\0nvidia,tegra234")
    found = detect_target(dt, proc, nvidia_smi=no_gpu)
    assert found.target == "jetson-agx-orin" and "compatible" in found.reason


def test_a_jetson_without_a_profile_is_reported_not_taken_for_a_cpu(tmp_path):
    dt, proc = fake_roots(tmp_path, "NVIDIA Jetson AGX Thor Developer Kit", "nvidia,p3834-0008\0nvidia,tegra264")
    found = detect_target(dt, proc, nvidia_smi=no_gpu)
    assert found.target is None and "AGX Thor" in found.reason


def test_a_gpu_workstation_is_detected_from_nvidia_smi(tmp_path):
    dt, proc = fake_roots(tmp_path, cpuinfo=X86_CPUINFO)
    found = detect_target(dt, proc, nvidia_smi=lambda: (DATA / "nvidia_smi_h100.csv").read_text())
    assert found.target == "nvidia-gpu" and found.warnings == []
    assert found.gpus == [{"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_mb": 81559.0,
                           "driver": "570.86.15"}]


def test_a_gpu_older_than_the_profile_is_detected_with_a_warning(tmp_path):
    dt, proc = fake_roots(tmp_path, cpuinfo=X86_CPUINFO)
    found = detect_target(dt, proc, nvidia_smi=lambda: (DATA / "nvidia_smi_t4_a100.csv").read_text())
    assert found.target == "nvidia-gpu" and len(found.gpus) == 2
    assert "Tesla T4 has compute capability 7.5, not the 8.0 or newer" in found.warnings[0]


@pytest.mark.parametrize("cpuinfo, expected, flags", [
    (X86_CPUINFO, "x86-cpu", ["avx2", "avx512f", "avx512_vnni", "fma", "f16c"]),
    (ARM_CPUINFO, "arm-cpu", ["asimd", "asimddp"]),
])
def test_without_jetson_or_gpu_the_cpu_architecture_picks_the_profile(tmp_path, cpuinfo, expected, flags):
    dt, proc = fake_roots(tmp_path, cpuinfo=cpuinfo)
    found = detect_target(dt, proc, nvidia_smi=no_gpu)
    assert found.target == expected and found.cpu_flags == flags


def test_an_unknown_architecture_matches_no_profile(tmp_path):
    dt, proc = fake_roots(tmp_path, cpuinfo="")
    found = detect_target(dt, proc, nvidia_smi=no_gpu, machine="riscv64")
    assert found.target is None and found.cpu_arch == "riscv64"
    assert found.reason == "no Jetson board, no NVIDIA GPU and no profile for CPU architecture riscv64"


def test_nvidia_smi_lines_with_missing_fields_are_read_as_unknown():
    assert parse_nvidia_smi("Orin (nvgpu), [N/A], [N/A], 540.4.0\n\n") == [
        {"name": "Orin (nvgpu)", "compute_capability": None, "memory_mb": None, "driver": "540.4.0"}]
    assert parse_nvidia_smi(None) == []


# ---------------------------------------------------------------------------- CLI


def invoke(*args):
    return CliRunner().invoke(app, ["targets", *args])


def test_targets_list_json_gives_every_profile():
    result = invoke("list", "--json")
    assert result.exit_code == 0, result.output
    assert {t["name"] for t in json.loads(result.stdout)} >= {"jetson-agx-orin", "x86-cpu"}
    assert "jetson-orin-nano" in invoke("list").stdout


def test_targets_show_prints_one_profile_and_refuses_an_unknown_one():
    data = json.loads(invoke("show", "jetson-agx-orin", "--json").stdout)
    assert data["dla"]["cores"] == 2 and data["energy"]["rail_map"] == "Jetson AGX Orin"
    text = invoke("show", "jetson-agx-orin").stdout
    assert "power: default_mode=MAXN" in text and "rail_map=Jetson AGX Orin" in text
    result = invoke("show", "jetson-orin-nan")
    assert result.exit_code != 0 and "did you mean 'jetson-orin-nano'" in str(result.exception)


def test_targets_detect_reads_the_given_roots(tmp_path):
    model, compatible, _ = BOARDS["orin-nano"]
    dt, proc = fake_roots(tmp_path, model, compatible)
    result = invoke("detect", "--json", "--device-tree-root", str(dt), "--proc-root", str(proc))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["target"] == "jetson-orin-nano"


def test_targets_detect_without_a_fitting_profile_is_device_unavailable(tmp_path):
    dt, proc = fake_roots(tmp_path, "NVIDIA Jetson AGX Thor Developer Kit")
    result = invoke("detect", "--device-tree-root", str(dt), "--proc-root", str(proc))
    assert isinstance(result.exception, DeviceUnavailable) and "AGX Thor" in str(result.exception)
