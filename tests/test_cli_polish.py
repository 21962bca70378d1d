"""Command-line polish: version, flags, piped tables, one number format, overrides, exports."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from harness.cli import app


def harness(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_version_prints_the_installed_version_and_exits_0():
    from importlib.metadata import version

    proc = harness("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"harness {version('harness')}"


def test_boolean_options_are_flags_without_a_type_placeholder_in_help():
    for command in (["run"], ["results", "export"], ["results", "show"], ["inspect"], ["worker"], ["train"], []):
        result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        for noise in ("<bool>", "BOOLEAN", "[default: False]", "--no-"):
            assert noise not in result.output, (command, noise, result.output)
    run_help = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output
    assert "--quick " in run_help and "--resume " in run_help and "--json " in run_help
