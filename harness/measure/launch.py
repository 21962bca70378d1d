"""Where a performance pass runs: a fresh Python process (default) or inline (tests)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.errors import MeasurementError
from harness.measure.worker import MeasureRequest, run_request

TIMEOUT_S = 900


def measure(request: MeasureRequest, isolation: str) -> dict:
    if isolation == "inline":
        return run_request(request, "inline")
    with tempfile.TemporaryDirectory(prefix="harness-measure-") as tmp:
        req = Path(tmp) / "request.json"
        res = Path(tmp) / "result.json"
        req.write_text(request.to_json())
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "harness.measure.worker", str(req), str(res)],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise MeasurementError(f"measuring process timed out after {TIMEOUT_S} s") from None
        if proc.returncode != 0 or not res.exists():
            tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            raise MeasurementError(f"measuring process failed (exit {proc.returncode}): {tail[0]}")
        return json.loads(res.read_text())
