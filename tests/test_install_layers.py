"""The base install runs without the compression stack; a command that needs a missing extra exits 3.

The fast tests run the checkout in a subprocess whose import system refuses the modules the extras
install (a meta-path finder that raises ``ModuleNotFoundError``, as a missing package does); the slow
one builds the base wheel and installs it, with the cpu extra's onnxruntime, in a fresh venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import deps
from harness.errors import MissingDependency

ROOT = Path(__file__).resolve().parents[1]

#: what no extra is installed means: the build, plots and runtime extras' modules, and optional model sources
BUILD_AND_PLOTS = ("torch", "torch_pruning", "onnxscript", "sklearn", "matplotlib", "torchvision", "timm", "triton")

#: the base layer: none of these may import a module of BUILD_AND_PLOTS (or onnxruntime) when imported
BASE_MODULES = (
    "harness.cli", "harness.store", "harness.fleet", "harness.fleet.worker", "harness.measure.worker",
    "harness.meters", "harness.metrics", "harness.selection", "harness.pareto", "harness.records",
    "harness.report.card", "harness.report.files", "harness.runtimes", "harness.runtimes.base",
    "harness.runtimes.onnxrt", "harness.stages.job", "harness.stages.finalize", "harness.pipeline",
)

_BLOCKER = """
import importlib.abc, sys
BLOCKED = set({blocked!r})
class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Absent())
"""


def run_without(blocked: tuple[str, ...], code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter on the checkout where every module of ``blocked`` is absent."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("HARNESS_DEBUG", None)
    return subprocess.run([sys.executable, "-c", _BLOCKER.format(blocked=blocked) + code, *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def harness_without(blocked: tuple[str, ...], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``harness ARGS`` (its console entry point) with every module of ``blocked`` absent."""
    code = "sys.argv = ['harness', *sys.argv[1:]]\nfrom harness.cli import main\nmain()\n"
    return run_without(blocked, code, cwd, *args)


def test_base_layer_imports_without_the_extras(tmp_path):
    blocked = (*BUILD_AND_PLOTS, "onnxruntime")
    code = (f"import importlib\nfor m in {BASE_MODULES!r}:\n    importlib.import_module(m)\n"
            f"print(sorted(k for k in sys.modules if k.split('.')[0] in BLOCKED))\n")
    out = run_without(blocked, code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [["--help"], ["worker", "--help"], ["submit", "--help"], ["targets", "list"]])
def test_base_commands_run_without_the_extras(tmp_path, args):
    out = harness_without((*BUILD_AND_PLOTS, "onnxruntime"), tmp_path, *args)
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout or args == ["targets", "list"]


def test_run_without_torch_exits_3_naming_the_build_extra(tmp_path):
    out = harness_without(BUILD_AND_PLOTS, tmp_path, "run", "--store", str(tmp_path / "h.db"))
    assert out.returncode == 3, out.stderr
    assert "needs torch (the build extra): pip install 'harness[build]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_train_without_torch_exits_3_naming_the_build_extra(tmp_path):
    out = harness_without(BUILD_AND_PLOTS, tmp_path, "train")
    assert out.returncode == 3, out.stderr
    assert "training a model needs torch (the build extra): pip install 'harness[build]'" in out.stderr


def test_run_without_onnxruntime_exits_3_naming_the_cpu_extra(tmp_path):
    out = harness_without(("onnxruntime",), tmp_path, "run", "--store", str(tmp_path / "h.db"))
    assert out.returncode == 3, out.stderr
    assert "the onnxruntime runtime needs onnxruntime (the cpu extra): pip install 'harness[cpu]'" in out.stderr


def test_an_import_of_a_module_an_extra_installs_is_exit_3_not_a_traceback(tmp_path):
    code = ("import harness.cli as cli\n"
            "def boom(): import sklearn\n"
            "cli.app.command('boom')(boom)\n"
            "sys.argv = ['harness', 'boom']\n"
            "cli.main()\n")
    out = run_without(("sklearn",), code, tmp_path)
    assert out.returncode == 3, out.stderr
    assert "harness boom needs scikit-learn (the build extra): pip install 'harness[build]'" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("runtime", "extra"), [("onnxruntime", "cpu"), ("onnxruntime-cuda", "cuda"), ("torch", "build")])
def test_a_runtime_without_its_library_names_its_extra(monkeypatch, runtime, extra):
    from harness.runtimes import RUNTIMES

    monkeypatch.setattr(deps, "is_available", lambda module: module.split(".")[0] not in ("onnxruntime", "torch"))
    runner = RUNTIMES.get(runtime)
    with pytest.raises(MissingDependency) as err:
        runner.require_installed()
    assert err.value.exit_code == 3
    assert str(err.value).endswith(f"(the {extra} extra): pip install 'harness[{extra}]'")
    assert f"pip install 'harness[{extra}]'" in (runner.unavailable_reason() or "")


def test_require_is_one_line_with_the_install():
    with pytest.raises(MissingDependency) as err:
        deps.require("harness_no_such_module", "plots", "drawing figures", package="no-such")
    assert str(err.value) == "drawing figures needs no-such (the plots extra): pip install 'harness[plots]'"
    assert err.value.exit_code == 3 and "\n" not in str(err.value)
    deps.require("numpy", "build", "anything")  # installed: nothing raised


def test_the_card_without_matplotlib_has_no_figures_and_says_why(tmp_path):
    code = (f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
            "from pathlib import Path\n"
            "from card_report import card_report\n"
            "from harness.report.files import write_card_files\n"
            f"print(sorted(write_card_files(card_report(), Path({str(tmp_path)!r}))))\n")
    out = run_without(("matplotlib",), code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['html', 'json', 'md']"
    card = (tmp_path / "card.md").read_text()
    assert card.count("not plotted: matplotlib is not installed, so no figure was drawn (pip install") == 4
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.svg"))


# ----------------------------------------------------------------------------- the base wheel, installed


def _venv_bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


def _tiny_onnx(path: Path) -> Path:
    """A 1x4 -> 1x3 Gemm model written with onnx.helper (no torch): what the base install benches."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4) / 10, "w")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def bench_in_base_install(harness: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``harness bench`` on an ONNX file with the cpu extra's onnxruntime, in the install without torch."""
    model = _tiny_onnx(cwd / "tiny.onnx")
    return subprocess.run([str(harness), "bench", str(model), "--runtime", "onnxruntime", "--profile", "quick",
                           "--json"], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_the_base_wheel_runs_without_torch(tmp_path):
    started = time.monotonic()
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                    "-w", str(dist)], check=True, capture_output=True, cwd=tmp_path, timeout=300)
    (wheel,) = dist.glob("harness-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(_venv_bin(venv, "python")), "-m", "pip", "install", "-q", f"{wheel}[cpu]"],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    python, harness = _venv_bin(venv, "python"), _venv_bin(venv, "harness")
    absent = subprocess.run([str(python), "-c", "import importlib.util as u; print([m for m in "
                             f"{BUILD_AND_PLOTS!r} if u.find_spec(m)], u.find_spec('onnxruntime') is not None)"],
                            capture_output=True, text=True, check=True, cwd=tmp_path)
    assert absent.stdout.split() == ["[]", "True"], "the base install with the cpu extra has no build stack"
    env = {**os.environ, "COLUMNS": "200"}
    top = subprocess.run([str(harness), "--help"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert top.returncode == 0, top.stderr
    worker = subprocess.run([str(harness), "worker", "--help"], capture_output=True, text=True, cwd=tmp_path,
                            env=env, timeout=120)
    assert worker.returncode == 0 and "Usage" in worker.stdout, worker.stderr
    run = subprocess.run([str(harness), "run", "--store", str(tmp_path / "h.db")], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=120)
    assert run.returncode == 3 and "pip install 'harness[build]'" in run.stderr, run.stderr
    bench = bench_in_base_install(harness, tmp_path)
    print(f"base wheel installed and checked in {time.monotonic() - started:.0f} s; "
          f"the venv holds {_size_mb(venv):.0f} MiB")
    assert bench.returncode == 0, bench.stderr[-2000:]
    (measured,) = json.loads(bench.stdout)["runs"]
    assert measured["runtime"] == "onnxruntime" and measured["batches"][0]["latency"]["p50_ms"] > 0


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def test_a_worker_without_the_runtime_library_puts_the_job_back_and_exits_3(tmp_path, monkeypatch):
    from harness.fleet import queue, work
    from harness.store import open_store

    url = str(tmp_path / "fleet.db")
    st = open_store(url)
    st.create_run("run-1", "fleet", "t", "{}", {}, str(tmp_path))
    queue.enqueue(st, "run-1", "cpu-x", [("variant-1", "onnxruntime")])
    monkeypatch.setattr(deps, "is_available", lambda module: module.split(".")[0] != "onnxruntime")
    with pytest.raises(MissingDependency, match=r"pip install 'harness\[cpu\]'"):
        work(url, "cpu-x", tmp_path / "results")
    assert queue.job_counts(st, "run-1") == {"queued": 1}  # another worker (or this one, installed) takes it
    st.close()


def test_a_run_without_matplotlib_notes_that_its_card_has_no_figures(monkeypatch):
    from types import SimpleNamespace

    from harness.config import ExperimentSpec
    from harness.report.figures import NO_PLOTS
    from harness.stages.finalize import run_notes

    ctx = SimpleNamespace(spec=ExperimentSpec(), rule=SimpleNamespace(warmup_runs=1, warmup_s=0.1, min_samples=10,
                                                                      min_duration_s=0.1))
    assert not any(NO_PLOTS in n for n in run_notes(ctx, []))
    monkeypatch.setattr(deps, "is_available", lambda module: module.split(".")[0] != "matplotlib")
    assert f"the card has no figures: {NO_PLOTS}" in run_notes(ctx, [])
