"""Which Jetson power rail is the module total, per board (data, not substring guessing).

Keyed by a fragment of the board model string (``/proc/device-tree/model``, e.g.
"NVIDIA Jetson AGX Orin Developer Kit"); the longest fragment found in the model wins.
Sources: measurement.md section 2.7 and its references. The rails are INA3221 channels;
none of them includes the carrier board or the power supply ("wall" needs an external
meter).

* A board with a module input rail (``VDD_IN``, ``POM_5V_IN``) uses it alone: the other
  rails are subsets of it, and adding them double-counts (rbonghi/jetson_stats#51).
* AGX Xavier has no input rail; its six rails add up to about the module.
* AGX Orin has no input rail either: ``VIN_SYS_5V0`` feeds carrier I/O, not the module
  (rbonghi/jetson_stats#344), so the total is the sum of the SoC/CPU/GPU/memory rails,
  labelled a partial module ("soc-rails").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness.meters.sampling import SamplingMeter

INPUT_RAILS = ("VDD_IN", "POM_5V_IN")  # module input rails across Jetson generations
MODEL_FILE = Path("/proc/device-tree/model")


@dataclass(frozen=True)
class BoardRails:
    total_rail: str | None  # the module input rail, when the board has one
    sum_rails: tuple[str, ...] = ()  # summed into the total when there is no input rail
    never_sum: tuple[str, ...] = ()  # subsets of the total, or rails outside the module
    scope: str = "module"
    partial: bool = False  # the sum misses part of the module
    note: str = ""


_ORIN_SMALL = BoardRails("VDD_IN", never_sum=("VDD_CPU_GPU_CV", "VDD_SOC"),
                         note="VDD_CPU_GPU_CV (CPU+GPU+CV, no GPU-only rail) and VDD_SOC are inside VDD_IN")

RAIL_MAP: dict[str, BoardRails] = {
    "Jetson Nano": BoardRails("POM_5V_IN", never_sum=("POM_5V_GPU", "POM_5V_CPU"),
                              note="POM_5V_GPU and POM_5V_CPU are subsets of POM_5V_IN"),
    "Jetson TX2": BoardRails(
        "VDD_IN", never_sum=("VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_SYS_CPU", "VDD_SYS_DDR", "VDD_4V0_WIFI"),
        note="the VDD_SYS_* rails are inside VDD_IN"),
    "Jetson Xavier NX": BoardRails("VDD_IN", never_sum=("VDD_CPU_GPU_CV", "VDD_SOC"),
                                   note="VDD_CPU_GPU_CV and VDD_SOC are inside VDD_IN"),
    "Jetson AGX Xavier": BoardRails(None, sum_rails=("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"),
                                    note="no input rail; the six rails add up to about the module"),
    "Jetson AGX Orin": BoardRails(
        None, sum_rails=("VDD_GPU_SOC", "VDD_CPU_CV", "VDDQ_VDD2_1V8AO"), never_sum=("VIN_SYS_5V0",),
        scope="soc-rails", partial=True,
        note="no module input rail; VIN_SYS_5V0 feeds carrier I/O and is left out, so the total "
             "is a partial module"),
    "Jetson Orin NX": _ORIN_SMALL,
    "Jetson Orin Nano": _ORIN_SMALL,
}


@dataclass(frozen=True)
class TotalRule:
    """How a meter turns per-rail energy into its total, and how to label it."""

    rails: tuple[str, ...]  # added into the total; empty: the meter has no total
    scope: str
    label: str  # for EnergyWindow.source: "VDD_IN", "sum(GPU+CPU+...)", "partial-sum(...)"
    warnings: tuple[str, ...] = ()

    def total_j(self, energy_j: dict[str, float]) -> float | None:
        if not self.rails or not all(r in energy_j for r in self.rails):
            return None
        return sum(energy_j[r] for r in self.rails)


def read_board_model(model_file: Path = MODEL_FILE) -> str | None:
    try:
        return model_file.read_bytes().rstrip(b"\x00\n ").decode(errors="replace") or None
    except OSError:
        return None


def board_rails(model: str | None) -> BoardRails | None:
    if not model:
        return None
    found = [key for key in RAIL_MAP if key.lower() in model.lower()]
    return RAIL_MAP[max(found, key=len)] if found else None


def total_rule(model: str | None, rail_names: Iterable[str]) -> TotalRule:
    names = list(rail_names)
    board = board_rails(model)
    if board is not None and board.total_rail is not None:
        if board.total_rail in names:
            return TotalRule((board.total_rail,), board.scope, board.total_rail)
        return TotalRule((), "soc-rails", "per-rail", (
            f"{model} should expose its module input rail {board.total_rail}, but only "
            f"{', '.join(names) or 'no rails'} were found; per-rail energy only",))
    if board is not None:
        present = tuple(r for r in board.sum_rails if r in names)
        missing = [r for r in board.sum_rails if r not in names]
        if not present:
            return TotalRule((), "soc-rails", "per-rail", (
                f"none of the rails {', '.join(board.sum_rails)} of {model} were found; per-rail energy only",))
        warnings: tuple[str, ...] = ()
        if missing:
            warnings = (f"rails {', '.join(missing)} of {model} were not found; the total misses them",)
        kind = "partial-sum" if board.partial or missing else "sum"
        scope = "soc-rails" if missing else board.scope
        return TotalRule(present, scope, f"{kind}({'+'.join(present)})", warnings)
    for rail in INPUT_RAILS:
        if rail in names:
            return TotalRule((rail,), "module", rail, (
                f"board model {model!r} is not in RAIL_MAP; took {rail} as the module input rail",))
    return TotalRule((), "soc-rails", "per-rail", (
        f"board model {model!r} is not in RAIL_MAP and has no {' or '.join(INPUT_RAILS)} rail; "
        "per-rail energy only (adding rails may double-count)",))


class RailRuleMeter(SamplingMeter):
    """A sampling meter over Jetson rails whose total follows a :class:`TotalRule`."""

    needs_rail_map: ClassVar[bool] = True  # a target naming it must give energy.rail_map
    rule: TotalRule | None = None

    def _total_j(self, energy_j: dict[str, float]) -> float | None:
        return self.rule.total_j(energy_j) if self.rule else None

    def _window_energy_j(
        self, begin_s: float, begin: Any, end_s: float, end: Any
    ) -> tuple[dict[str, float], list[str], int | None]:
        energy_j, warnings, n_samples = super()._window_energy_j(begin_s, begin, end_s, end)
        return energy_j, (list(self.rule.warnings) if self.rule else []) + warnings, n_samples
