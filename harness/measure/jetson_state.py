"""Jetson power mode (nvpmodel) and jetson_clocks state, read through an injectable command runner.

``nvpmodel -q`` prints the active mode's name and id::

    NV Fan Mode:quiet          (JetPack 5+, absent before)
    NV Power Mode: MAXN
    0

Where ``nvpmodel`` is missing or fails, the mode is read from the files it keeps:
``/var/lib/nvpmodel/status`` (``pmode:0002 fmode:quiet``) names the id, and
``/etc/nvpmodel.conf`` (``< POWER_MODEL ID=2 NAME=15W >``) maps it to a name.

``jetson_clocks --show`` (root only on most images) prints one line per CPU, GPU and EMC
with ``MinFreq``/``MaxFreq``/``CurrentFreq``; jetson_clocks pins every clock's minimum to its
maximum, so "active" means min == max on every online CPU and on the GPU. Without it the
same comparison is made from sysfs: cpufreq ``scaling_min_freq``/``scaling_max_freq`` and the
GPU's devfreq ``min_freq``/``max_freq``. A value that cannot be read is None and the reason
says why; nothing is guessed (this module never decides a board is a Jetson on its own: no
nvpmodel and no nvpmodel files means "not a Jetson, or nvpmodel is not installed").
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: runs argv and returns (exit status, stdout + stderr); 127 when the program does not exist
CommandRunner = Callable[[list[str]], tuple[int, str]]

_MODE = re.compile(r"NV Power Mode:\s*(\S+)")
_STATUS = re.compile(r"pmode:\s*(\d+)")
_CONF_MODE = re.compile(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>")
_FREQS = re.compile(r"MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)")
_CPU_LINE = re.compile(r"^(cpu\d+):\s*Online=(\d)")
#: devfreq device names of Jetson GPUs (Nano gm20b, TX2 gp10b, Xavier gv11b, Orin ga10b; JetPack 6 "gpu")
GPU_DEVFREQ_MARKERS = ("gm20b", "gp10b", "gv11b", "ga10b", "gb10b", "gpu")


def run_command(argv: list[str], timeout_s: float = 10.0) -> tuple[int, str]:
    """The default :data:`CommandRunner`: ``subprocess.run`` without a shell."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 126, f"{argv[0]}: {exc}"
    return done.returncode, (done.stdout or "") + (done.stderr or "")


@dataclass(frozen=True)
class JetsonState:
    """Power mode and clock pinning of a Jetson; None fields have a reason in ``unavailable_reasons``."""

    power_mode: str | None = None
    power_mode_id: int | None = None
    power_mode_source: str | None = None  # nvpmodel -q | /var/lib/nvpmodel/status
    jetson_clocks_active: bool | None = None
    jetson_clocks_source: str | None = None  # jetson_clocks --show | sysfs
    clocks: dict[str, Any] = field(default_factory=dict)  # {"gpu": {"min_mhz", "max_mhz", "cur_mhz"}, ...}
    unavailable_reasons: dict[str, str] = field(default_factory=dict)


def parse_nvpmodel_query(text: str) -> tuple[str | None, int | None]:
    """Mode name and id from ``nvpmodel -q`` output (id None when the line after the name is missing)."""
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        if m := _MODE.search(line):
            following = next((x for x in lines[i + 1:] if x), "")
            return m.group(1), int(following) if following.isdigit() else None
    return None, None


def parse_nvpmodel_conf(text: str) -> dict[int, str]:
    """``{id: name}`` of every ``< POWER_MODEL ID=n NAME=... >`` in /etc/nvpmodel.conf."""
    return {int(i): name for i, name in _CONF_MODE.findall(text)}


def parse_jetson_clocks_show(text: str) -> dict[str, dict[str, float | None]]:
    """Clock ranges (MHz) from ``jetson_clocks --show``: ``cpu0``.., ``gpu``, ``emc``; offline CPUs left out."""
    clocks: dict[str, dict[str, float | None]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        freqs = _FREQS.search(line)
        if not freqs:
            continue
        lo, hi, cur = (int(v) for v in freqs.groups())
        cpu = _CPU_LINE.match(line)
        if cpu:
            if cpu.group(2) != "1":
                continue
            name, unit = cpu.group(1), 1e3  # kHz
        elif line.startswith("GPU"):
            name, unit = "gpu", 1e6  # Hz
        elif line.startswith("EMC"):
            name, unit = "emc", 1e6
        else:
            continue
        clocks[name] = {"min_mhz": lo / unit, "max_mhz": hi / unit, "cur_mhz": cur / unit}
    return clocks


def clocks_pinned(clocks: Mapping[str, Mapping[str, float | None]]) -> bool | None:
    """True when every online CPU and the GPU run with min == max (what jetson_clocks sets); None without both."""
    cpus = [v for k, v in clocks.items() if k.startswith("cpu")]
    if not cpus or "gpu" not in clocks:
        return None
    return all(c["min_mhz"] == c["max_mhz"] for c in [*cpus, clocks["gpu"]])


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def sysfs_clocks(sysfs_root: Path) -> dict[str, dict[str, float | None]]:
    """CPU (cpufreq) and GPU (devfreq) clock ranges in MHz from sysfs (``cur_mhz`` None when unreadable)."""
    clocks: dict[str, dict[str, float | None]] = {}
    base = Path(sysfs_root) / "devices" / "system" / "cpu"
    for cpu in sorted(base.glob("cpu[0-9]*"), key=lambda p: int(p.name[3:]) if p.name[3:].isdigit() else -1):
        if not cpu.name[3:].isdigit() or _read(cpu / "online") == "0":
            continue
        lo, hi, cur = (_read(cpu / "cpufreq" / f) for f in ("scaling_min_freq", "scaling_max_freq", "scaling_cur_freq"))
        if lo is not None and hi is not None and lo.isdigit() and hi.isdigit():
            clocks[cpu.name] = {"min_mhz": int(lo) / 1e3, "max_mhz": int(hi) / 1e3,
                                "cur_mhz": int(cur) / 1e3 if cur and cur.isdigit() else None}
    for dev in sorted((Path(sysfs_root) / "class" / "devfreq").glob("*")):
        if not any(marker in dev.name for marker in GPU_DEVFREQ_MARKERS):
            continue
        lo, hi, cur = (_read(dev / f) for f in ("min_freq", "max_freq", "cur_freq"))
        if lo is not None and hi is not None and lo.isdigit() and hi.isdigit():
            clocks["gpu"] = {"min_mhz": int(lo) / 1e6, "max_mhz": int(hi) / 1e6,
                             "cur_mhz": int(cur) / 1e6 if cur and cur.isdigit() else None}
            break
    return clocks


def read_power_mode(run: CommandRunner, root: Path = Path("/")) -> tuple[str | None, int | None, str | None, str | None]:
    """``(name, id, source, None)`` of the nvpmodel mode, or ``(None, None, None, reason)``."""
    status, out = run(["nvpmodel", "-q"])
    if status == 0:
        name, mode_id = parse_nvpmodel_query(out)
        if name is not None:
            return name, mode_id, "nvpmodel -q", None
    why = "nvpmodel is not installed (not a Jetson)" if status == 127 else (
        f"nvpmodel -q failed (exit {status}): {out.strip()[:200]}" if status else "nvpmodel -q printed no power mode")
    status_text = _read(Path(root) / "var" / "lib" / "nvpmodel" / "status")
    m = _STATUS.search(status_text or "")
    if m is None:
        return None, None, None, f"{why}; no /var/lib/nvpmodel/status to fall back on"
    mode_id = int(m.group(1))
    names = parse_nvpmodel_conf(_read(Path(root) / "etc" / "nvpmodel.conf") or "")
    return names.get(mode_id), mode_id, "/var/lib/nvpmodel/status", (
        None if mode_id in names else f"mode {mode_id} has no name in /etc/nvpmodel.conf"
    )


def read_jetson_state(
    run: CommandRunner = run_command, sysfs_root: Path = Path("/sys"), root: Path = Path("/"),
) -> JetsonState:
    """nvpmodel mode and jetson_clocks state; nothing is read past the first sign that this is no Jetson."""
    reasons: dict[str, str] = {}
    name, mode_id, mode_source, mode_reason = read_power_mode(run, root)
    if mode_reason:
        reasons["power_mode"] = mode_reason
    if name is None and mode_id is None:
        reasons["jetson_clocks"] = "not read: no nvpmodel mode, so this is not taken for a Jetson"
        return JetsonState(unavailable_reasons=reasons)
    status, out = run(["jetson_clocks", "--show"])
    clocks = parse_jetson_clocks_show(out) if status == 0 else {}
    source: str | None = "jetson_clocks --show"
    if clocks_pinned(clocks) is None:
        shown = "jetson_clocks is not installed" if status == 127 else (
            f"jetson_clocks --show failed (exit {status}; it needs root)" if status else
            "jetson_clocks --show printed no CPU and GPU clock lines")
        clocks, source = sysfs_clocks(sysfs_root), "sysfs"
        if clocks_pinned(clocks) is None:
            reasons["jetson_clocks"] = f"{shown}; sysfs under {sysfs_root} has no cpufreq and GPU devfreq ranges"
            source = None
    return JetsonState(name, mode_id, mode_source, clocks_pinned(clocks), source, clocks, reasons)


def power_mode_warning(state: JetsonState, expected: str | None) -> str | None:
    """A warning when the measured mode is not the target profile's default (``expected``)."""
    if expected is None or expected == "default" or state.power_mode is None:
        return None
    if state.power_mode.upper() == expected.upper():
        return None
    return (f"power mode is {state.power_mode} (nvpmodel id {state.power_mode_id}), not the target profile's "
            f"default {expected}: latency and energy are those of {state.power_mode}")
