"""Wall power from an external meter: a command that prints watts, or a file a logger appends to.

The only way to get MLPerf-comparable "wall" numbers (carrier board and power supply
included) is a meter outside the device: a USB power meter, a smart plug, a lab
analyser. Give either

* ``command``: run once per sample; watts are read from the last line of its stdout, or
* ``file``: a log that something else appends to; watts are read from its last complete
  line, and a file that stops growing for ``max_age_s`` is an error, not a constant.

A line may carry other fields: the last number suffixed ``W`` (or ``mW``) is taken, else
the last number ("2025-01-01T10:00:00,5.02,1.20,6.02 W" and "6.02" both give 6.02 W).
Readings are stamped on arrival, so a logger's own buffering adds to the time offset
(MLPerf tolerates 800 ms between the meter and the device).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.errors import ConfigError, MeasurementError
from harness.meters.base import Clock, EnergyMeter, MeterProbe, _seconds
from harness.meters.sampling import SamplingMeter

_READING = re.compile(r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(mW|W)?\b")
_TAIL_BYTES = 4096
RAIL = "wall"


def parse_watts(text: str) -> float:
    """Watts on the last non-empty line of ``text``."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("no output to read watts from")
    readings = _READING.findall(lines[-1])
    if not readings:
        raise ValueError(f"no number in {lines[-1]!r}")
    with_unit = [(value, unit) for value, unit in readings if unit]
    value, unit = (with_unit or readings)[-1]
    return float(value) / (1000.0 if unit == "mW" else 1.0)


class ExternalMeter(SamplingMeter):
    name = "external"
    scope = "wall"
    source = "external"
    auto_rank = 10  # available only when configured, and then the user's choice of what to measure

    @classmethod
    def detect(cls, probe: MeterProbe, found: Mapping[str, EnergyMeter]) -> EnergyMeter:
        return cls(probe.external_command, probe.external_file, clock=probe.clock)

    def __init__(
        self,
        command: str | Sequence[str] | None = None,
        file: str | Path | None = None,
        *,
        period_s: float = 1.0,
        timeout_s: float | None = None,
        max_age_s: float | None = None,
        clock: Clock = time.monotonic,
        min_window_s: float = 1.0,
        autostart: bool = True,
    ) -> None:
        if command is not None and file is not None:
            raise ConfigError("give the external meter a command or a file, not both")
        super().__init__(period_s=period_s, clock=clock, min_window_s=min_window_s, autostart=autostart)
        self.sensor_period_s = period_s
        self.command = shlex.split(command) if isinstance(command, str) else (list(command) if command else None)
        self.file = Path(file) if file is not None else None
        self.timeout_s = timeout_s if timeout_s is not None else max(2.0 * period_s, 1.0)
        self.max_age_s = max_age_s if max_age_s is not None else max(10.0 * period_s, 5.0)
        self.source = "external-command" if self.command else "external-file"
        self.reason = self._probe()
        self.available = self.reason is None

    def _probe(self) -> str | None:
        if not self.command and self.file is None:
            return "no external meter configured (give a command or a file that yields watts)"
        try:
            self._read_power_w()
        except (OSError, ValueError, MeasurementError) as exc:
            what = f"command {shlex.join(self.command)!r}" if self.command else f"file {self.file}"
            return f"external meter {what} gave no reading: {exc}"
        return None

    def _read_power_w(self) -> dict[str, float]:
        text = self._run_command() if self.command else self._last_complete_line()
        return {RAIL: parse_watts(text)}

    def _run_command(self) -> str:
        assert self.command is not None
        try:
            done = subprocess.run(self.command, capture_output=True, text=True, timeout=self.timeout_s, check=True)
        except subprocess.TimeoutExpired as exc:
            raise MeasurementError(f"external meter command took over {_seconds(self.timeout_s)} s") from exc
        except subprocess.CalledProcessError as exc:
            raise MeasurementError(
                f"external meter command exited with {exc.returncode}: {(exc.stderr or '').strip()[-200:]}"
            ) from exc
        return done.stdout

    def _last_complete_line(self) -> str:
        assert self.file is not None
        age_s = time.time() - self.file.stat().st_mtime
        if age_s > self.max_age_s:
            raise MeasurementError(
                f"{self.file} was last written {_seconds(age_s)} s ago (limit {_seconds(self.max_age_s)} s); "
                "is the logger still running?"
            )
        with self.file.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - _TAIL_BYTES))
            tail = f.read().decode(errors="replace")
        if tail and not tail.endswith("\n"):  # the logger is mid-line: use the line before it
            tail = tail[: tail.rfind("\n") + 1]
        return tail
