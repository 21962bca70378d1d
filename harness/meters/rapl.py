"""CPU package energy from the Linux powercap RAPL counters.

Layout (Intel, and AMD Zen on recent kernels, both under the ``intel-rapl`` names)::

    <root>/intel-rapl:0/{name,energy_uj,max_energy_range_uj}    name = "package-0"
    <root>/intel-rapl:0:0/...                                     name = "core" (inside package 0)
    <root>/intel-rapl:1/...                                       name = "package-1" or "psys"

Every domain is reported in ``energy_j`` ("package-0", "package-0/core", "psys" ...), but
the total sums only top-level domains named ``package-*``: sub-domains (core, uncore,
dram) are already part of their package, and ``psys`` (platform, on some laptops)
contains the packages, so adding either would count the same joules twice.

Each ``energy_uj`` counter wraps at ``max_energy_range_uj``; one wrap per window is
corrected. Since Linux 5.10 (the PLATYPUS fix, CVE-2020-8694) ``energy_uj`` is
readable by root only.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import MeasurementError
from harness.meters.base import Clock, EnergyMeter, MeterProbe

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
_TOP = re.compile(r"intel-rapl:(\d+)")
_SUB = re.compile(r"intel-rapl:(\d+):(\d+)")


@dataclass(frozen=True)
class _Domain:
    key: str  # "package-0", "package-0/core", "psys"
    energy_file: Path
    range_j: float | None  # counter wraps back to 0 after this many joules
    in_total: bool


class RaplMeter(EnergyMeter):
    name = "rapl"
    scope = "cpu-package"
    source = "rapl-counter"
    sample_period_s = None  # counters are read at the window edges
    sensor_period_s = 0.001  # the counters update about every 1 ms; the 1-s minimum window dominates
    auto_rank = 50  # the CPU package: all the compute of a CPU runtime, only the host side of a GPU one

    @classmethod
    def detect(cls, probe: MeterProbe, found: Mapping[str, EnergyMeter]) -> EnergyMeter:
        return cls(probe.powercap, probe.clock)

    def __init__(
        self,
        powercap_root: Path = DEFAULT_POWERCAP_ROOT,
        clock: Clock = time.monotonic,
        *,
        min_window_s: float = 1.0,
    ) -> None:
        super().__init__(clock=clock, min_window_s=min_window_s)
        self.powercap_root = Path(powercap_root)
        self._domains: list[_Domain] = []
        self.reason = self._discover()
        self.available = self.reason is None

    def _discover(self) -> str | None:
        """Find the domains and read them once; return why the meter is unusable, or None."""
        root = self.powercap_root
        if not root.is_dir():
            return (
                f"no RAPL powercap interface at {root} "
                "(not an Intel/AMD host with the powercap driver, or inside a VM)"
            )
        tops = {m.group(1): p for p in root.iterdir() if (m := _TOP.fullmatch(p.name))}
        top_names = {index: _read_text(path / "name") or path.name for index, path in tops.items()}
        if not any(n.startswith("package") for n in top_names.values()):
            return (
                f"no RAPL package domain (intel-rapl:N with name package-N) under {root} "
                "(the powercap driver exposes no CPU package counter on this host)"
            )
        subs = sorted(p for p in root.iterdir() if (m := _SUB.fullmatch(p.name)) and m.group(1) in tops)
        for path in sorted(tops.values()) + subs:
            parent = _SUB.fullmatch(path.name)
            name = _read_text(path / "name") or path.name
            key = f"{top_names[parent.group(1)]}/{name}" if parent else name
            if any(d.key == key for d in self._domains):
                key = f"{key} ({path.name})"
            range_uj = _read_text(path / "max_energy_range_uj")
            range_j = int(range_uj) / 1e6 if range_uj and range_uj.isdigit() else None
            self._domains.append(
                _Domain(
                    key=key,
                    energy_file=path / "energy_uj",
                    range_j=range_j,
                    in_total=parent is None and name.startswith("package"),
                )
            )
        try:
            self._read_counters_j()
        except PermissionError as exc:
            return (
                f"RAPL energy_uj at {exc.filename} is not readable (needs root: since Linux 5.10 "
                "energy_uj is root-only; run as root or make it readable with "
                f"`sudo chmod a+r {root}/intel-rapl:*/energy_uj`, which lasts until reboot)"
            )
        except (OSError, ValueError) as exc:
            return f"RAPL counters under {root} could not be read: {exc}"
        return None

    def _read_counters_j(self) -> dict[str, float]:
        return {d.key: int(d.energy_file.read_text().strip()) / 1e6 for d in self._domains}

    def _delta_j(self, domain: str, begin_j: float, end_j: float) -> float:
        if end_j >= begin_j:
            return end_j - begin_j
        range_j = next(d.range_j for d in self._domains if d.key == domain)
        if range_j is None:
            raise MeasurementError(f"RAPL counter {domain} went backwards and has no max_energy_range_uj")
        return end_j + range_j - begin_j

    def _total_j(self, energy_j: dict[str, float]) -> float | None:
        return sum(energy_j[d.key] for d in self._domains if d.in_total and d.key in energy_j)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
