"""`harness run` with a model from a file: exit codes of bad model input, an ONNX baseline, NaN outputs."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import TINY_CHANNELS, tiny_experiment

PRUNE_AND_INT8 = (
    '[[prune]]\nmethod = "magnitude"\nsparsity = [0.5]\nfinetune_epochs = 0\n'
    '[[quantize]]\nprecision = "int8"\ncalibration_samples = 16\n'
)


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """``harness.cli:main`` in this process: its exit code and its one error line, as a user sees them."""
    from harness.cli import main

    monkeypatch.setattr(sys, "argv", ["harness", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, errors
    return exit_.value.code, errors[0]


@pytest.fixture
def experiment(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(tiny_experiment("models", epochs=1).replace("channels = [8, 8, 8, 8, 8]", f"channels = {TINY_CHANNELS}"))
    return path


def test_a_corrupt_checkpoint_exits_5_naming_it_and_the_run_stays_recorded(experiment, tmp_path, monkeypatch, capsys):
    from harness.store import open_store

    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"PK\x03\x04 half a zip file")
    code, error = run_main(monkeypatch, capsys, "run", str(experiment), "--checkpoint", str(bad),
                           "--results-dir", str(tmp_path / "r"))
    assert code == 5 and str(bad) in error and "truncated or corrupt" in error
    store = open_store(tmp_path / "r" / "harness.db")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT status FROM runs").scalars().all() == ["failed"]
    store.close()


def test_a_missing_model_package_exits_3_with_the_install_command(experiment, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    code, error = run_main(monkeypatch, capsys, "run", str(experiment), "--model", "timm:resnet18",
                           "--results-dir", str(tmp_path))
    assert code == 3 and "timm is not installed" in error


def test_an_onnx_model_whose_input_does_not_fit_the_dataset_exits_5(tiny_onnx, experiment, tmp_path, monkeypatch,
                                                                    capsys):
    wide = tmp_path / "wide.toml"
    wide.write_text(experiment.read_text().replace("image_size = 8", "image_size = 16"))
    code, error = run_main(monkeypatch, capsys, "run", str(wide), "--model", str(tiny_onnx),
                           "--results-dir", str(tmp_path))
    assert code == 5 and str(tiny_onnx) in error and "(1, 16, 16)" in error


def _invoke(*args: str):
    from typer.testing import CliRunner

    from harness.cli import app

    return CliRunner().invoke(app, ["run", *args, "--json", "--inline"])


def test_an_onnx_model_is_the_dense_baseline_and_only_quantization_applies(tiny_onnx, tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(tiny_experiment("onnx-model", sections=PRUNE_AND_INT8).replace(
        'runtimes = ["onnxruntime"]', 'runtimes = ["onnxruntime", "torch"]'))
    result = _invoke(str(path), "--model", str(tiny_onnx), "--results-dir", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output[-3000:]
    doc = json.loads(result.stdout)
    assert sorted({p["variant_name"] for p in doc["points"]}) == ["dense", "dense+int8"]
    assert {p["runtime"] for p in doc["points"]} == {"onnxruntime"}
    assert all(p["status"] == "ok" for p in doc["points"])
    said = " ".join(result.stderr.split())  # rich wraps long lines
    assert "pruning / fine-tuning variants skipped: magnitude-0.5" in said and "runtimes torch skipped" in said
    report = json.loads((tmp_path / "r" / "runs" / doc["run_id"] / "report.json").read_text())
    assert any("magnitude-0.5" in n and "ONNX file" in n for n in report["notes"])
    assert any("not trained by this run" in n and "onnx file" in n for n in report["notes"])


def nan_onnx(onnx_in, onnx_out):
    """Writes the ONNX model ``onnx_in`` with its logits multiplied by NaN to ``onnx_out``."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_in))
    out = model.graph.output[0]
    model.graph.initializer.append(numpy_helper.from_array(np.array(np.nan, dtype=np.float32), "nan_scale"))
    for node in model.graph.node:
        node.output[:] = [f"{o}_pre" if o == out.name else o for o in node.output]
    model.graph.node.append(helper.make_node("Mul", [f"{out.name}_pre", "nan_scale"], [out.name]))
    onnx.save(model, str(onnx_out))
    return onnx_out


def nan_quantizer(onnx_in, onnx_out, *args, **kwargs):
    """Writes the parent model with its logits multiplied by NaN: a variant whose outputs are all NaN."""
    nan_onnx(onnx_in, onnx_out)
    return {"method": "nan"}


def test_nan_outputs_fail_that_point_with_a_stored_error_and_the_run_exits_6(tmp_path, monkeypatch):
    from harness.compress import QUANTIZERS
    from harness.store import open_store

    monkeypatch.setattr(QUANTIZERS, "get", lambda name: nan_quantizer)
    path = tmp_path / "exp.toml"
    path.write_text(tiny_experiment("nan", sections='[[quantize]]\nprecision = "int8"\n'))
    result = _invoke(str(path), "--results-dir", str(tmp_path))
    assert result.exit_code == 6, result.output[-3000:]
    doc = json.loads(result.stdout)
    by_name = {p["variant_name"]: p for p in doc["points"]}
    assert by_name["dense"]["status"] == "ok"
    failed = by_name["dense+int8"]
    assert failed["status"] == "failed" and "NaN / infinite outputs" in failed["error"] and "dense+int8" in failed["error"]
    assert failed["top1"] is None and failed["p50_ms"] is None  # not measured, not 0
    store = open_store(tmp_path / "harness.db")
    stored = {p.variant_name: p for p in store.operating_points(doc["run_id"])}
    assert stored["dense+int8"].error == failed["error"] and stored["dense"].status == "ok"
    assert store.run_row(doc["run_id"])["status"] == "partial"
    store.close()


@pytest.mark.slow  # exports the program to ONNX and measures two runtimes: ~25 s on a shared 2-core CPU
def test_an_exported_program_runs_on_torch_and_onnxruntime_as_the_dense_baseline(tiny_onnx, tmp_path):
    program = tiny_onnx.with_suffix(".pt2")  # written beside the ONNX file by the fixture
    path = tmp_path / "exp.toml"
    path.write_text(tiny_experiment("pt2-model", sections=PRUNE_AND_INT8.split("[[quantize]]")[0]).replace(
        'runtimes = ["onnxruntime"]', 'runtimes = ["onnxruntime", "torch"]'))
    result = _invoke(str(path), "--model", str(program), "--results-dir", str(tmp_path))
    assert result.exit_code == 0, result.output[-3000:]
    doc = json.loads(result.stdout)
    assert {(p["variant_name"], p["runtime"]) for p in doc["points"]} == {("dense", "onnxruntime"), ("dense", "torch")}
    top1 = {p["runtime"]: p["top1"] for p in doc["points"]}
    assert top1["torch"] == pytest.approx(top1["onnxruntime"], abs=0.01)  # the same program, two runtimes
    assert "magnitude-0.5" in " ".join(result.stderr.split())


def test_a_manifest_with_missing_columns_exits_5_naming_them(tmp_path, monkeypatch, capsys):
    from tests.test_datasets_folders import write_manifest

    manifest, _ = write_manifest(tmp_path)
    exp = tmp_path / "exp.toml"
    exp.write_text(tiny_experiment("manifest", dataset=f'name = "manifest"\npath = "{manifest}"\n'
                                   'group_attributes = ["income"]\n'))
    code, error = run_main(monkeypatch, capsys, "run", str(exp), "--results-dir", str(tmp_path / "r"))
    assert code == 5 and f"{manifest} lacks columns income" in error


def with_external_data(onnx_path, folder, location: str = "weights.bin"):
    """A copy of ``onnx_path`` in ``folder`` whose weights all live in the side file ``location``."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(onnx_path))
    out = folder / "model.onnx"
    onnx.save_model(model, str(out), save_as_external_data=True, all_tensors_to_one_file=True, location=location,
                    size_threshold=0)
    return out


def _harness_run(*args: str):
    import subprocess

    return subprocess.run([sys.executable, "-m", "harness", "run", *args, "--json", "--inline"], capture_output=True,
                          text=True, timeout=600)


def test_an_onnx_model_with_external_data_runs_and_its_cached_copy_holds_the_weights(tiny_onnx, tmp_path):
    model = with_external_data(tiny_onnx, tmp_path / "given")
    assert (tmp_path / "given" / "weights.bin").stat().st_size > model.stat().st_size
    path = tmp_path / "exp.toml"
    path.write_text(tiny_experiment("onnx-external"))
    proc = _harness_run(str(path), "--model", str(model), "--results-dir", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    points = json.loads(proc.stdout)["points"]
    assert [(p["variant_name"], p["status"]) for p in points] == [("dense", "ok")]
    assert points[0]["top1"] > 0.5
    cached = list((tmp_path / "r").rglob("model.onnx"))
    assert cached and all(not list(c.parent.glob("*.bin")) for c in cached)  # weights embedded in the copy


@pytest.mark.parametrize("where", ["../secret.bin", "ABSOLUTE"])
def test_an_onnx_model_whose_external_data_lies_outside_its_folder_is_refused(tiny_onnx, tmp_path, where):
    import onnx

    model = with_external_data(tiny_onnx, tmp_path / "given")
    (tmp_path / "given" / "weights.bin").rename(tmp_path / "secret.bin")
    location = str(tmp_path / "secret.bin") if where == "ABSOLUTE" else where
    proto = onnx.load(str(model), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save_model(proto, str(model))
    path = tmp_path / "exp.toml"
    path.write_text(tiny_experiment("onnx-escape"))
    proc = _harness_run(str(path), "--model", str(model), "--results-dir", str(tmp_path / "r"))
    assert proc.returncode == 5, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert str(model) in errors[0] and f"external data location {location!r}" in errors[0]
    assert "outside the model's folder" in errors[0]
