"""``harness bench``: one file timed through the sweep's measuring process, its sample times, its JSON, the
store, and the errors of a file, a shape or a runtime that does not fit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.bench import BenchSpec, bench, parse_shape
from harness.errors import ConfigError, DeviceUnavailable, InputError, ParseError

#: a short stopping rule: the test checks the plumbing, test_latency the rule itself
FAST = {"profile": "quick", "isolation": "inline", "warmup_runs": 2, "warmup_s": 0.0, "min_samples": 6,
        "min_duration_s": 0.0, "max_duration_s": 5.0, "window_tolerance": 10.0, "max_robust_cv": 100.0,
        "idle_baseline_s": 0.0, "bootstrap_resamples": 100}
FAST_FLAGS = ["--inline", "--profile", "quick"]


def pool_classifier(path: Path, dims: list, n_classes: int = 3) -> Path:
    """GlobalAveragePool -> Flatten -> Gemm: runs on any H x W, so the same graph serves static and dynamic axes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    channels = dims[1]
    weight = numpy_helper.from_array(rng.standard_normal((channels, n_classes)).astype(np.float32), "w")
    bias = numpy_helper.from_array(np.zeros(n_classes, np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("Gemm", ["f", "w", "b"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [dims[0], n_classes])], initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory) -> Path:
    return pool_classifier(tmp_path_factory.mktemp("bench") / "model.onnx", ["batch", 2, 4, 4])


@pytest.fixture(scope="module")
def pt2_file(tmp_path_factory) -> Path:
    import torch

    from harness.export.onnx import export_program

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))
    path = tmp_path_factory.mktemp("bench") / "model.pt2"
    export_program(model, np.zeros((1, 1, 4, 4), np.float32), path)
    return path


def spec(model: Path, **kw) -> BenchSpec:
    measure = {**FAST, **kw.pop("measure", {})}
    return BenchSpec(model=model, measure=measure, **kw)


def test_an_onnx_file_is_timed_on_onnxruntime_at_every_batch_size(onnx_file):
    result = bench(spec(onnx_file, runtimes=["onnxruntime"], measure={"batch_sizes": [1, 3]}))
    assert result.artifact_format == "onnx" and result.input.model_dims == ["batch", 2, 4, 4]
    assert result.input.sample_shape == [2, 4, 4] and result.input.source == "synthetic" and result.input.n_rows == 3
    assert result.artifact is not None and result.artifact.n_weights == 6 and result.artifact.precision == "fp32"
    (run,) = result.runs
    assert run.runtime == "onnxruntime"
    assert [b.latency.batch_size for b in run.batches] == [1, 3]
    assert [b.latency.scenario for b in run.batches] == ["single-stream", "offline"]
    for b in run.batches:
        assert len(b.samples_ms) == b.latency.n_samples >= 6 and len(b.warmup_ms) == b.latency.n_warmup >= 2
        assert b.latency.isolation == "inline" and b.latency.timed_artifact_sha256 == result.artifact_sha256
        assert "no reference outputs" in b.latency.output_check_unavailable_reason
        assert b.latency.stability in ("converged", "unstable")
        assert b.energy.energy_per_inference_mj is not None or b.energy.unavailable_reason
    assert run.memory.peak_rss_mb is None and "inline" in run.memory.peak_rss_unavailable_reason
    assert result.accuracy_unavailable_reason and result.store is None


def test_the_default_runtime_is_the_first_that_runs_the_format(onnx_file, pt2_file):
    assert [r.runtime for r in bench(spec(onnx_file)).runs] == ["onnxruntime"]
    result = bench(spec(pt2_file))
    assert [r.runtime for r in result.runs] == ["torch"]
    assert result.artifact_format == "torch.export" and result.input.sample_shape == [1, 4, 4]
    assert result.input.model_dims is not None and isinstance(result.input.model_dims[0], str)  # the batch symbol
    assert result.runs[0].batches[0].latency.batch_size == 1


def test_a_pt2_file_runs_on_torch_at_a_larger_batch(pt2_file):
    result = bench(spec(pt2_file, runtimes=["torch"], measure={"batch_sizes": [4]}))
    assert result.runs[0].batches[0].latency.batch_size == 4 and result.input.n_rows == 4
    batch_symbol = result.input.model_dims[0]
    with pytest.raises(ConfigError, match=rf"takes axis 0 \({batch_symbol!r}\) from 1 to 4096; 5000 is outside"):
        bench(spec(pt2_file, measure={"batch_sizes": [5000]}))


def test_a_runtime_that_cannot_run_the_format_is_named_with_it(onnx_file):
    with pytest.raises(ConfigError, match=r"runtime 'torch' runs torch.export files, not onnx \(.*model.onnx\)"):
        bench(spec(onnx_file, runtimes=["torch"]))


def test_a_target_offers_the_runtimes(onnx_file, pt2_file):
    result = bench(spec(onnx_file, target="x86-cpu"))
    assert result.target == "x86-cpu" and [r.runtime for r in result.runs] == ["onnxruntime"]
    with pytest.raises(ConfigError, match="target x86-cpu has no runtime 'torch-cuda'"):
        bench(spec(pt2_file, runtimes=["torch-cuda"], target="x86-cpu"))


def test_a_tensorrt_engine_needs_the_shape_and_a_tensorrt_runtime(tmp_path):
    from harness.bench import artifact_format, resolve_shape
    from harness.runtimes import RUNTIMES

    engine = tmp_path / "model.plan"
    engine.write_bytes(b"serialized engine")
    assert artifact_format(engine) == "tensorrt-engine"
    assert artifact_format(tmp_path / "model.trt-qdq.onnx") == "onnx-trt-qdq"
    with pytest.raises(ConfigError, match="not read from the file: give it with --shape"):
        resolve_shape(engine, None, None, None)
    assert resolve_shape(engine, None, [4, 3, 8, 8], None) == ([3, 8, 8], [4])
    with pytest.raises(ConfigError, match="runtime 'onnxruntime' runs onnx files, not tensorrt-engine"):
        bench(spec(engine, runtimes=["onnxruntime"]))
    if RUNTIMES.get("tensorrt").unavailable_reason() is not None:  # this host has no TensorRT: exit 4, said why
        with pytest.raises(DeviceUnavailable, match="tensorrt"):
            bench(spec(engine, shape=[1, 3, 8, 8]))


def test_a_dynamic_axis_other_than_the_batch_needs_the_shape(tmp_path):
    path = pool_classifier(tmp_path / "dyn.onnx", ["N", 2, "height", "width"])
    with pytest.raises(ConfigError, match=r"dynamic axis 2 \('height'\).*--shape Nx2x\?x\?"):
        bench(spec(path))
    result = bench(spec(path, shape=parse_shape("2x2x5x7")))
    assert result.input.sample_shape == [2, 5, 7]
    assert [b.latency.batch_size for b in result.runs[0].batches] == [2]  # --shape's batch when none is asked
    with pytest.raises(ConfigError, match="fixes it to 2"):
        bench(spec(path, shape=[1, 3, 5, 7]))


def test_a_static_batch_fixes_the_batch_size(tmp_path):
    path = pool_classifier(tmp_path / "static.onnx", [1, 2, 4, 4])
    assert [b.latency.batch_size for b in bench(spec(path)).runs[0].batches] == [1]
    with pytest.raises(ConfigError, match="static batch of 1"):
        bench(spec(path, measure={"batch_sizes": [8]}))


def test_shapes_are_parsed_with_a_named_error():
    assert parse_shape("1x3x224x224") == [1, 3, 224, 224]
    for bad in ("1x3xax4", "0x3", "", "1,3"):
        with pytest.raises(ParseError, match="--shape"):
            parse_shape(bad)


def test_given_inputs_are_fed_and_a_wrong_shape_is_one_line(onnx_file, tmp_path):
    good = tmp_path / "x.npy"
    np.save(good, np.ones((2, 2, 4, 4), np.float64))  # cast to the model's float32
    result = bench(spec(onnx_file, inputs=good))
    assert result.input.source == "file" and result.input.inputs_path == str(good) and result.input.seed is None
    bad = tmp_path / "bad.npy"
    np.save(bad, np.ones((2, 3, 4, 4), np.float32))
    with pytest.raises(InputError) as exc:
        bench(spec(onnx_file, inputs=bad))
    assert "\n" not in str(exc.value) and "2x3x4x4" in str(exc.value) and "Nx2x4x4" in str(exc.value)


def test_a_corrupt_or_unknown_file_is_an_input_error(tmp_path):
    corrupt = tmp_path / "broken.onnx"
    corrupt.write_bytes(b"\x00not an onnx file")
    with pytest.raises(InputError, match="cannot be read"):
        bench(spec(corrupt))
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(InputError, match="not a file harness bench times"):
        bench(spec(other))


def test_export_times_hold_every_sample_of_every_batch(onnx_file, tmp_path):
    out = tmp_path / "times" / "t.json"
    result = bench(spec(onnx_file, measure={"batch_sizes": [1, 2]}, export_times=out))
    rows = json.loads(out.read_text())
    assert result.export_times_path == str(out)
    for b in result.runs[0].batches:
        mine = [r for r in rows if r["batch_size"] == b.latency.batch_size]
        timed = [r["latency_ms"] for r in mine if r["phase"] == "timed"]
        warm = [r["latency_ms"] for r in mine if r["phase"] == "warmup"]
        assert timed == b.samples_ms and len(timed) == b.latency.n_samples
        assert warm == b.warmup_ms and len(warm) == b.latency.n_warmup
        assert {r["scenario"] for r in mine} == {b.latency.scenario} and {r["runtime"] for r in mine} == {"onnxruntime"}
        assert [r["index"] for r in mine if r["phase"] == "timed"] == list(range(len(timed)))


def cli(*args: str):
    from harness.cli import app

    return CliRunner().invoke(app, list(args))


def test_json_parses_and_the_table_names_what_is_unavailable(onnx_file, tmp_path):
    proc = cli("bench", str(onnx_file), *FAST_FLAGS, "-b", "1", "-b", "2", "--json")
    assert proc.exit_code == 0, proc.output
    doc = json.loads(proc.stdout)
    assert doc["artifact_format"] == "onnx" and doc["runs"][0]["runtime"] == "onnxruntime"
    assert [b["latency"]["batch_size"] for b in doc["runs"][0]["batches"]] == [1, 2]
    assert doc["measure"]["profile"] == "quick" and doc["accuracy_unavailable_reason"]
    table = cli("bench", str(onnx_file), *FAST_FLAGS)
    assert table.exit_code == 0 and "p50 ms" in table.stdout and "accuracy: n/a" in table.stdout


def test_store_records_points_without_accuracy_that_results_show_lists(onnx_file, tmp_path):
    db = tmp_path / "h.db"
    result = bench(spec(onnx_file, measure={"batch_sizes": [1, 2]}, store=str(db)))
    assert result.run_id and result.point_ids == ["model.onnx@onnxruntime/bs1", "model.onnx@onnxruntime/bs2"]
    shown = cli("results", "show", result.run_id, "--store", str(db), "--json")
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    assert doc["status"] == "ok" and [p["point_id"] for p in doc["points"]] == result.point_ids
    for p in doc["points"]:
        assert p["status"] == "ok" and p["top1"] is None and p["p50_ms"] is not None
        assert p["prune_method"] == "unknown" and p["prune_amount"] is None and "harness bench" in p["recipe"]
    table = cli("results", "show", result.run_id, "--store", str(db))
    assert table.exit_code == 0 and "(bench:model.onnx): ok" in table.stdout  # cells wrap at the runner's width
    from harness.store import open_store

    st = open_store(db)
    try:
        row = st.run_row(result.run_id)
        (variant,) = st.variant_rows(result.run_id)
        assert (variant["prune_method"], variant["precision"], variant["seed"]) == ("unknown", "fp32", None)
        assert json.loads(variant["spec_json"])["prune_amount"] is None
        assert len(st.latency_samples(result.run_id)["model.onnx@onnxruntime/bs1"]) == result.runs[0].batches[0].latency.n_samples
    finally:
        st.close()
    described = json.loads(row["experiment_json"])
    assert described["kind"] == "bench" and described["accuracy"] is None and row["run_dir"] is None
    listed = cli("results", "list", "--store", str(db), "--json")
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [result.run_id]


def test_a_missing_file_is_exit_2_in_one_line_through_the_real_cli(tmp_path):
    missing = tmp_path / "absent.onnx"
    proc = subprocess.run([sys.executable, "-m", "harness", "bench", str(missing)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "model file not found" in lines[0] and "absent.onnx" in lines[0]


def test_a_fresh_measuring_process_reads_the_memory_stack_through_the_real_cli(onnx_file, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness", "bench", str(onnx_file), "--profile", "quick", "--json",
                           "--export-times", str(tmp_path / "t.json")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    (run,) = doc["runs"]
    assert 10 < run["memory"]["peak_rss_mb"] < 4000 and run["batches"][0]["latency"]["isolation"] == "process"
    assert len(json.loads((tmp_path / "t.json").read_text())) == sum(
        b["latency"]["n_samples"] + b["latency"]["n_warmup"] for b in run["batches"])


def test_bench_builds_its_request_with_the_sweeps_function(onnx_file, monkeypatch):
    import harness.stages.measure as stage

    calls = []
    real = stage.measure_request

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(stage, "measure_request", spy)
    bench(spec(onnx_file, runtimes=["onnxruntime"]))
    assert len(calls) == 1 and calls[0][4] == "onnxruntime" and calls[0][-1] is None  # no reference logits


def test_a_missing_inputs_file_is_a_config_error(onnx_file, tmp_path):
    with pytest.raises(ConfigError, match="inputs file not found"):
        bench(spec(onnx_file, inputs=tmp_path / "none.npy"))
