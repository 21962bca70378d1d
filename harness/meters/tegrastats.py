"""Jetson rail power parsed from ``tegrastats`` lines: the fallback when sysfs is not readable.

Power fields are ``RAIL cur/avg`` in milliwatts, where ``avg`` is tegrastats' running
average since it started (rbonghi/jetson_stats#85); only ``cur`` is used. The format
drifted across JetPack releases (FindHao/tx-utils#3), and all of these are parsed:

* JetPack 4: bare numbers, ``POM_5V_IN 933/933`` (Nano), ``VDD_IN 3140/3208`` (TX2),
  ``GPU 1155/1155`` (AGX Xavier);
* JetPack 5/6: an ``mW`` suffix, ``VDD_IN 4936mW/4936mW``;
* JetPack 7: three values per rail, ``VDD_GPU_SOC 5139mW/5139mW/5139mW``.

``NC`` (not connected) rails are dropped. The meter reads the newest line from an
injectable ``line_source``; by default it runs ``tegrastats --interval <ms>`` and keeps the
last line it printed, so a reading can be up to one interval old.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.meters.base import Clock, EnergyMeter, MeterProbe
from harness.meters.rails import MODEL_FILE, RailRuleMeter, read_board_model, total_rule

_NUMBER = r"\d+(?:\.\d+)?"
_RAIL = re.compile(rf"(?<![\w@/.])([A-Z][A-Z0-9_]*) ({_NUMBER})(?:mW)?((?:/{_NUMBER}(?:mW)?){{1,2}})(?=\s|$)")
NOT_CONNECTED = "NC"

LineSource = Callable[[], str | None]


def parse_tegrastats(line: str) -> dict[str, float]:
    """Instantaneous power per rail in watts (first value of each ``RAIL cur/avg[/...]`` field)."""
    power_w: dict[str, float] = {}
    for match in _RAIL.finditer(line):
        rail, current_mw = match.group(1), float(match.group(2))
        if rail != NOT_CONNECTED and rail not in power_w:
            power_w[rail] = current_mw / 1000.0
    return power_w


class TegrastatsProcess:
    """Runs tegrastats and keeps the newest line it printed."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._latest: str | None = None

    def start(self) -> None:
        if self._proc is not None:
            return
        self._proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
        )
        self._thread = threading.Thread(target=self._pump, name="tegrastats-reader", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._latest = line.strip() or self._latest

    def latest_line(self) -> str | None:
        return self._latest

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if proc.stdout is not None:
            proc.stdout.close()


class TegrastatsMeter(RailRuleMeter):
    name = "tegrastats"
    scope = "module"
    source = "tegrastats"
    auto_rank = 30

    @classmethod
    def detect(cls, probe: MeterProbe, found: Mapping[str, EnergyMeter]) -> EnergyMeter | str:
        jetson = found.get("jetson")
        if jetson is not None and jetson.available:
            return "the Jetson sysfs rails are readable; tegrastats is only their fallback"
        if probe.tegrastats_command is None:
            return "tegrastats was not probed (tegrastats_command=None)"
        return cls(command=probe.tegrastats_command, model_file=probe.model_file, clock=probe.clock)

    def __init__(
        self,
        line_source: LineSource | None = None,
        *,
        command: str | Sequence[str] = "tegrastats",
        interval_ms: int = 100,
        board_model: str | None = None,
        model_file: Path = MODEL_FILE,
        clock: Clock = time.monotonic,
        min_window_s: float = 1.0,
        autostart: bool = True,
    ) -> None:
        super().__init__(period_s=interval_ms / 1000.0, clock=clock, min_window_s=min_window_s,
                         autostart=autostart)
        self.sensor_period_s = interval_ms / 1000.0
        self.board_model = board_model if board_model is not None else read_board_model(model_file)
        self.process: TegrastatsProcess | None = None
        if line_source is None:
            argv = [shutil.which(command)] if isinstance(command, str) else list(command)
            if argv[0] is None:
                self.available = False
                self.reason = (
                    f"{command} is not on PATH (not a Jetson, or JetPack's tools are not installed)"
                )
                line_source = lambda: None  # noqa: E731
            else:
                self.process = TegrastatsProcess([str(a) for a in argv] + ["--interval", str(interval_ms)])
                line_source = self.process.latest_line
        self.line_source = line_source

    def start(self) -> None:
        if self.available and self.process is not None:
            self.process.start()
        super().start()

    def close(self) -> None:
        super().close()
        if self.process is not None:
            self.process.close()

    def _read_power_w(self) -> dict[str, float]:
        line = self.line_source()
        power_w = parse_tegrastats(line) if line else {}
        if power_w and self.rule is None:
            self.rule = total_rule(self.board_model, power_w)
            self.scope = self.rule.scope
            self.source = f"tegrastats:{self.rule.label}"
        return power_w
