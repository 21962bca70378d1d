"""`harness --help` stays fast: the CLI and the package import no heavy library."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["torch", "onnxruntime", "onnx", "sklearn", "matplotlib", "torch_pruning", "sqlalchemy"]


def test_cli_import_pulls_in_no_heavy_library():
    code = "import sys, harness, harness.cli; print(','.join(m for m in %r if m in sys.modules))" % HEAVY
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_runs_and_lists_run():
    out = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "run" in out.stdout
