"""Hostile model files and exit codes, through the installed ``harness`` command in a subprocess.

A crafted ``.pt2`` or checkpoint must be refused before anything in it runs: each payload here would
create a marker file if it were unpickled. A run with a failing point must exit 6 from the real
entry point (an in-process ``CliRunner`` cannot see what ``main()`` returns to the shell).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import tiny_experiment
from tests.test_models_run import nan_onnx

HARNESS = [str(Path(sys.executable).parent / "harness")] if (Path(sys.executable).parent / "harness").exists() \
    else [sys.executable, "-m", "harness"]


def harness(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


class MarkerPayload:
    """Unpickling this creates ``path``: proof that the file's code ran (through ``exec``)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


class ShellPayload(MarkerPayload):
    """The same through ``os.system`` (torch words its refusal "module posix is blocked")."""

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.path}",))


def pickled(obj) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def clean_pt2(tiny_model, tiny_dataset, tmp_path_factory) -> Path:
    from harness.export.onnx import export_program

    out = tmp_path_factory.mktemp("pt2") / "model.pt2"
    export_program(tiny_model, tiny_dataset.evaluation.x[:1], out)
    return out


def rewrite_archive(source: Path, target: Path, change) -> Path:
    """A copy of the zip ``source`` where ``change(member, data)`` returns each member's new bytes
    (``None`` drops it); ``change("+", None)`` may return a dict of members to add."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        root = zin.namelist()[0].split("/", 1)[0]
        for name in zin.namelist():
            data = change(name.split("/", 1)[1], zin.read(name))
            if data is not None:
                zout.writestr(name, data)
        for member, data in (change("+", None) or {}).items():
            zout.writestr(f"{root}/{member}", data)
    return target


def pickled_weight(marker: Path):
    def change(member: str, data: bytes | None):
        if member == "data/weights/model_weights_config.json":
            config = json.loads(data)
            first = next(iter(config["config"].values()))
            first["use_pickle"] = True
            return json.dumps(config).encode()
        if member == "data/weights/weight_0":
            return pickled(MarkerPayload(marker))
        return None if member == "+" else data
    return change


def pickled_sample_inputs(marker: Path):
    def change(member: str, data: bytes | None):
        if member == "data/sample_inputs/model.pt":
            return pickled(((MarkerPayload(marker),), {}))
        return None if member == "+" else data
    return change


def opaque_constant(marker: Path):
    import pickle

    def change(member: str, data: bytes | None):
        if member == "data/constants/model_constants_config.json":
            return json.dumps({"config": {"evil": {"path_name": "opaque_obj_0", "is_param": False,
                                                    "use_pickle": False, "tensor_meta": None}}}).encode()
        if member == "+":
            return {"data/constants/opaque_obj_0": pickle.dumps(MarkerPayload(marker))}
        return data
    return change


def native_code(marker: Path):
    def change(member: str, data: bytes | None):
        if member == "+":
            return {"data/aotinductor/model/model.so": b"\x7fELF not really"}
        return data
    return change


@pytest.mark.parametrize("craft", [pickled_weight, pickled_sample_inputs, opaque_constant, native_code],
                         ids=["weight-use_pickle", "sample-inputs-pickle", "opaque-constant", "aotinductor-library"])
def test_a_crafted_pt2_is_refused_before_its_payload_runs(craft, clean_pt2, tmp_path):
    marker = tmp_path / "marker"
    evil = rewrite_archive(clean_pt2, tmp_path / "evil.pt2", craft(marker))
    experiment = tmp_path / "exp.toml"
    experiment.write_text(tiny_experiment("hostile-pt2"))
    proc = harness("run", str(experiment), "--model", str(evil), "--results-dir", str(tmp_path / "r"))
    assert not marker.exists(), "the archive's payload ran"
    assert proc.returncode == 5, proc.stderr[-2000:]
    (line,) = error_lines(proc)
    assert str(evil) in line and "was refused" in line and "nothing in it was executed" in line
    assert "Traceback" not in proc.stderr


def test_the_pt2_guard_accepts_what_torch_export_save_writes(clean_pt2):
    from harness.export.pt2 import check_archive, load_program

    check_archive(clean_pt2)
    assert load_program(clean_pt2).module() is not None


def test_a_truncated_pt2_exits_5_without_torch_s_traceback(clean_pt2, tmp_path):
    cut = tmp_path / "cut.pt2"
    cut.write_bytes(clean_pt2.read_bytes()[: clean_pt2.stat().st_size // 2])
    experiment = tmp_path / "exp.toml"
    experiment.write_text(tiny_experiment("cut-pt2"))
    proc = harness("run", str(experiment), "--model", str(cut), "--results-dir", str(tmp_path / "r"))
    assert proc.returncode == 5, proc.stderr[-2000:]
    (line,) = error_lines(proc)
    assert str(cut) in line and "truncated" in line
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("payload", [MarkerPayload, ShellPayload], ids=["exec", "os.system"])
def test_a_checkpoint_that_pickles_code_is_refused_as_such_never_called_corrupt(payload, tmp_path):
    import torch

    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "payload": payload(marker)}, evil)
    experiment = tmp_path / "exp.toml"
    experiment.write_text(tiny_experiment("hostile-checkpoint"))
    proc = harness("run", str(experiment), "--checkpoint", str(evil), "--results-dir", str(tmp_path / "r"))
    assert not marker.exists()
    assert proc.returncode == 5, proc.stderr[-2000:]
    (line,) = error_lines(proc)
    assert str(evil) in line and "was refused" in line and "could run code" in line
    assert "corrupt" not in line
    assert "weights_only=False" not in proc.stderr.replace("never loads a checkpoint with weights_only=False", "")


def test_a_run_with_a_failed_point_exits_6_from_the_installed_command(tiny_onnx, tmp_path):
    source = shutil.copy(tiny_onnx, tmp_path / "good.onnx")
    bad = nan_onnx(Path(source), tmp_path / "nan.onnx")
    experiment = tmp_path / "exp.toml"
    experiment.write_text(tiny_experiment("nan-onnx"))
    proc = harness("run", str(experiment), "--model", str(bad), "--json", "--inline",
                   "--results-dir", str(tmp_path / "r"))
    assert proc.returncode == 6, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["points"] and all(p["status"] == "failed" for p in doc["points"])
    assert "NaN / infinite outputs" in doc["points"][0]["error"]


def test_a_successful_run_still_exits_0_from_the_installed_command(tiny_onnx, tmp_path):
    experiment = tmp_path / "exp.toml"
    experiment.write_text(tiny_experiment("good-onnx"))
    proc = harness("run", str(experiment), "--model", str(tiny_onnx), "--inline", "--results-dir", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_worker_whose_job_failed_exits_6(tiny_onnx, tmp_path):
    bad = nan_onnx(tiny_onnx, tmp_path / "nan.onnx")
    experiment = tmp_path / "exp.toml"
    experiment.write_text(tiny_experiment("nan-fleet").replace("channels = [8, 8, 8, 8, 8]", f'name = "{bad}"'))
    store = str(tmp_path / "fleet.db")
    submitted = harness("submit", str(experiment), "--target", "x86-cpu", "--store", store,
                        "--results-dir", str(tmp_path / "r"))
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    proc = harness("worker", "--target", "x86-cpu", "--store", store, "--results-dir", str(tmp_path / "w"))
    assert proc.returncode == 6, proc.stderr[-2000:]
    assert "0 job(s) done, 1 failed" in proc.stdout
