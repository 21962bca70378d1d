"""Command-line polish: version, flags, piped tables, one number format, overrides, exports."""

from __future__ import annotations

import subprocess
import sys


def harness(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_version_prints_the_installed_version_and_exits_0():
    from importlib.metadata import version

    proc = harness("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"harness {version('harness')}"

