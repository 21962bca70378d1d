"""`harness --help` stays fast: the CLI and the package import no heavy library."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["torch", "onnxruntime", "onnx", "sklearn", "matplotlib", "torch_pruning", "sqlalchemy"]


def test_cli_import_pulls_in_no_heavy_library():
    code = f"import sys, harness, harness.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_runs_and_lists_run():
    out = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "run" in out.stdout


def test_every_package_in_the_tree_is_listed_in_pyproject():
    """Packages under harness/, plus the top-level folders package-dir maps into it (targets/, kernels/)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    folders = {"harness": "harness", **setuptools["package-dir"]}
    assert folders["harness.kernels"] == "kernels"
    found = {".".join((name, *p.parent.relative_to(root / folder).parts))
             for name, folder in folders.items() for p in (root / folder).rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert not any(name == "kernels" or name.startswith("kernels.") for name in listed), \
        "kernels/ installs as harness.kernels: a top-level 'kernels' collides with the PyPI distribution"


def test_kernels_import_as_harness_kernels_from_the_checkout():
    """In-tree runs (pytest from the repository root, editable install) resolve harness.kernels to kernels/."""
    from pathlib import Path

    import harness.kernels

    root = Path(__file__).resolve().parents[1]
    assert Path(harness.kernels.__file__).resolve().parent == root / "kernels"


def test_the_wheel_ships_the_target_profiles(tmp_path):
    """Installed from a wheel (no checkout beside it), `harness targets list` still finds every profile."""
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(root),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("harness-*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    shipped = sorted(p.name for p in (tmp_path / "site" / "harness" / "_targets").glob("*.toml"))
    assert shipped == sorted(p.name for p in (root / "targets").glob("*.toml"))
    kernels = sorted(p.name for p in (tmp_path / "site" / "harness" / "kernels").glob("*.py"))
    assert kernels == sorted(p.name for p in (root / "kernels").glob("*.py"))
    assert not (tmp_path / "site" / "kernels").exists(), "kernels/ ships as harness.kernels, never top-level"
    code = ("import harness.kernels.reference as ref; from harness.targets import list_targets, TARGETS_DIR; "
            "print(TARGETS_DIR, len(list_targets()), ref.__file__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}, check=True)
    where, count, reference = out.stdout.split()
    assert "site" in where and int(count) == len(shipped)
    assert Path(reference) == tmp_path / "site" / "harness" / "kernels" / "reference.py"
