"""Jetson module power from the INA3221 shunt monitors in sysfs, sampled and integrated.

Layouts under ``sysfs_root`` (``/sys``), all read as rail -> watts:

* JetPack 5/6/7, hwmon driver: ``bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmon*/`` with
  ``in{N}_label`` (rail name), ``in{N}_input`` (bus voltage, mV), ``curr{N}_input`` (mA),
  and ``update_interval`` (ms) when the driver exposes it. Channels 1-3 only: channel 7 is
  "sum of shunt voltages", and ``NC`` channels are not connected. A ``power{N}_input``
  (µW, the hwmon convention) is preferred when present. AGX Orin has two monitors
  (``1-0040``, ``1-0041``). Thor's INA238 on the carrier (``drivers/ina238``, one channel)
  is read the same way; it is named by its ``in1_label`` or else ``ina238 <bus>-<addr>``.
* JetPack 4, iio driver: ``bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:device*/`` with
  ``rail_name_{N}``, ``in_power{N}_input`` (mW), else ``in_voltage{N}_input`` (mV) x
  ``in_current{N}_input`` (mA).

Which rail is the total comes from :data:`harness.meters.rails.RAIL_MAP` by board model.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from harness.meters.base import Clock, EnergyMeter, MeterProbe
from harness.meters.rails import MODEL_FILE, RailRuleMeter, read_board_model, total_rule

DEFAULT_SYSFS_ROOT = Path("/sys")
HWMON_DRIVERS = ("ina3221", "ina238")
IIO_DRIVER = "ina3221x"
SKIPPED_LABELS = ("NC", "sum of shunt voltages")
_HWMON_IN = re.compile(r"in(\d+)_input")
_IIO_RAIL = re.compile(r"rail_name_(\d+)")


@dataclass(frozen=True)
class _Rail:
    key: str
    monitor: str  # "<bus>-<addr>"
    power_file: Path | None  # read directly, times power_scale_w
    power_scale_w: float
    voltage_file: Path | None  # mV
    current_file: Path | None  # mA

    def read_w(self) -> float:
        if self.power_file is not None:
            return int(self.power_file.read_text().split()[0]) * self.power_scale_w
        assert self.voltage_file is not None and self.current_file is not None
        mv = int(self.voltage_file.read_text().split()[0])
        ma = int(self.current_file.read_text().split()[0])
        return mv * ma / 1e6


def find_rails(sysfs_root: Path) -> tuple[list[_Rail], str | None, float | None]:
    """Every connected rail, the layout ("hwmon", "iio" or None), and the slowest update interval."""
    drivers = sysfs_root / "bus" / "i2c" / "drivers"
    rails: list[_Rail] = []
    intervals_s: list[float] = []
    for driver in HWMON_DRIVERS:
        for hwmon in sorted((drivers / driver).glob("*-*/hwmon/hwmon*")):
            monitor = hwmon.parent.parent.name
            rails += _hwmon_rails(hwmon, monitor, driver)
            if (interval := _read(hwmon / "update_interval")) and interval.isdigit():
                intervals_s.append(int(interval) / 1000.0)
    if rails:
        return _unique(rails), "hwmon", max(intervals_s, default=None)
    for device in sorted((drivers / IIO_DRIVER).glob("*-*/iio:device*")):
        rails += _iio_rails(device, device.parent.name)
    return _unique(rails), ("iio" if rails else None), None


def _hwmon_rails(hwmon: Path, monitor: str, driver: str) -> list[_Rail]:
    rails = []
    channels = sorted(int(m.group(1)) for f in hwmon.iterdir() if (m := _HWMON_IN.fullmatch(f.name)))
    for n in channels:
        label = _read(hwmon / f"in{n}_label")
        if label is None and driver == "ina238" and n == 1:
            label = f"ina238 {monitor}"
        if label is None or label in SKIPPED_LABELS or n > 3:
            continue
        power = hwmon / f"power{n}_input"
        current = hwmon / f"curr{n}_input"
        if not power.exists() and not current.exists():
            continue
        rails.append(_Rail(label, monitor, power if power.exists() else None, 1e-6,
                           hwmon / f"in{n}_input", current))
    return rails


def _iio_rails(device: Path, monitor: str) -> list[_Rail]:
    rails = []
    for f in sorted(device.iterdir()):
        if not (m := _IIO_RAIL.fullmatch(f.name)) or (label := _read(f)) is None or label in SKIPPED_LABELS:
            continue
        n = m.group(1)
        power = device / f"in_power{n}_input"
        rails.append(_Rail(label, monitor, power if power.exists() else None, 1e-3,
                           device / f"in_voltage{n}_input", device / f"in_current{n}_input"))
    return rails


def _unique(rails: list[_Rail]) -> list[_Rail]:
    """A label found on two monitors gets its monitor appended: "VDD_IN (1-0040)"."""
    counts = Counter(r.key for r in rails)
    return [replace(r, key=f"{r.key} ({r.monitor})") if counts[r.key] > 1 else r for r in rails]


class JetsonMeter(RailRuleMeter):
    name = "jetson"
    scope = "module"
    source = "ina3221"
    auto_rank = 20  # the module rail covers CPU and GPU

    @classmethod
    def detect(cls, probe: MeterProbe, found: Mapping[str, EnergyMeter]) -> EnergyMeter:
        return cls(probe.sysfs_root, model_file=probe.model_file, clock=probe.clock)

    def __init__(
        self,
        sysfs_root: Path = DEFAULT_SYSFS_ROOT,
        *,
        board_model: str | None = None,
        model_file: Path = MODEL_FILE,
        period_s: float = 0.05,
        clock: Clock = time.monotonic,
        min_window_s: float = 1.0,
        autostart: bool = True,
    ) -> None:
        super().__init__(period_s=period_s, clock=clock, min_window_s=min_window_s, autostart=autostart)
        self.sysfs_root = Path(sysfs_root)
        self.board_model = board_model if board_model is not None else read_board_model(model_file)
        self._rails: list[_Rail] = []
        self.reason = self._discover()
        self.available = self.reason is None

    def _discover(self) -> str | None:
        rails, layout, interval_s = find_rails(self.sysfs_root)
        if not rails:
            drivers = self.sysfs_root / "bus" / "i2c" / "drivers"
            return (
                f"no INA3221 rails under {drivers}/ina3221 (JetPack 5+) or {drivers}/{IIO_DRIVER} "
                "(JetPack 4): not a Jetson, or a board without power monitors (Nano 2GB)"
            )
        self._rails = rails
        try:
            self._read_power_w()
        except (OSError, ValueError) as exc:
            return f"INA3221 rails under {self.sysfs_root} could not be read: {exc}"
        self.rule = total_rule(self.board_model, [r.key for r in rails])
        self.scope = self.rule.scope
        self.source = f"ina3221-{layout}:{self.rule.label}"
        self.sensor_period_s = max(interval_s or 0.0, self.sampler.period_s)
        return None

    @property
    def rails(self) -> list[str]:
        return [r.key for r in self._rails]

    def _read_power_w(self) -> dict[str, float]:
        return {r.key: r.read_w() for r in self._rails}


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
