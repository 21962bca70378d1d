"""End to end through the real CLI on the small example experiment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

EXAMPLE = REPO / "docs" / "examples" / "experiment.toml"
REQUIRED = {
    "variant_id", "runtime", "prune_method", "sparsity", "precision", "recipe", "batch_size", "top1", "worst_class_recall",
    "per_class_recall", "p50_ms", "p90_ms", "p99_ms", "n_samples", "peak_rss_mb", "artifact_mb",
    "energy_per_inference_mj", "energy_unavailable_reason", "on_pareto_front", "status",
}


def harness(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    proc = harness("run", str(EXAMPLE), "--json", "--results-dir", str(results))
    return results, proc


def test_run_prints_only_json_on_stdout_with_the_documented_fields(first_run):
    _, proc = first_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    # 4 fp32 variants x 2 runtimes + 1 int8 variant x onnxruntime, at 2 batch sizes
    assert len(doc["points"]) == (3 * 2 + 1) * 2
    for p in doc["points"]:
        assert REQUIRED <= p.keys()
        assert p["status"] == "ok"
        assert set(p["per_class_recall"]) == set("0123456789")
        assert p["energy_per_inference_mj"] is not None or p["energy_unavailable_reason"]
    assert any(p["on_pareto_front"] for p in doc["points"])
    magnitude = [p for p in doc["points"] if p["prune_method"] == "magnitude"]
    assert all(abs(p["sparsity"] - 0.6) < 0.01 for p in magnitude)  # measured from the artifact
    assert all(p["recipe"].startswith("magnitude pruning to 60% sparsity") for p in magnitude)
    assert {p["precision"] for p in doc["points"]} == {"fp32", "int8"}
    assert doc["dataset"]["under_represented"] == ["3", "8"]


def test_run_writes_card_plot_and_store_rows(first_run):
    from harness.store import open_store

    results, proc = first_run
    doc = json.loads(proc.stdout)
    from pathlib import Path

    card = Path(doc["card_path"]).read_text()
    assert "Under-represented classes" in card and doc["run_id"] in card
    assert Path(doc["plot_path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    store = open_store(results / "harness.db")
    assert store.count("operating_points", doc["run_id"]) == len(doc["points"])
    assert store.count("latency_samples", doc["run_id"]) == len(doc["points"])
    assert store.count("evaluations", doc["run_id"]) == 7  # one accuracy pass per variant x runtime
    assert store.run_row(doc["run_id"])["status"] == "ok"
    store.close()


def test_second_run_reuses_the_cache_and_appends_a_new_run(first_run):
    from harness.store import open_store

    results, first = first_run
    proc = harness("run", str(EXAMPLE), "--json", "--results-dir", str(results), "--runtime", "onnxruntime")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "loaded from cache" in proc.stderr
    second, before = json.loads(proc.stdout), json.loads(first.stdout)
    assert second["run_id"] != before["run_id"]
    assert {p["runtime"] for p in second["points"]} == {"onnxruntime"}
    same = {(p["variant_id"], p["top1"]) for p in second["points"]} <= {(p["variant_id"], p["top1"]) for p in before["points"]}
    assert same  # identical artifacts from the cache give identical accuracy
    store = open_store(results / "harness.db")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM runs").scalar() == 2
    store.close()


def test_bad_experiment_is_one_line_and_exit_code_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[prune]]\nmethod = "magnitude"\nsparsity = [1.5]\n')
    proc = harness("run", str(bad), "--results-dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "sparsity" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "harness.db").exists()  # rejected before any work
    proc = harness("run", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and "not found" in proc.stderr


def test_a_failing_variant_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from harness.cli import app
    from harness.compress import QUANTIZERS
    from harness.store import open_store

    def broken_quantizer(*args, **kwargs):
        raise RuntimeError("calibration produced NaN scales")

    monkeypatch.setattr(QUANTIZERS, "get", lambda name: broken_quantizer)
    result = CliRunner().invoke(
        app, ["run", str(EXAMPLE), "--json", "--inline", "--runtime", "onnxruntime", "--results-dir", str(tmp_path)]
    )
    assert result.exit_code == 6
    doc = json.loads(result.stdout)
    failed = [p for p in doc["points"] if p["status"] == "failed"]
    assert {p["precision"] for p in failed} == {"int8"} and len(failed) == 2
    assert all("quantize" in p["error"] and "NaN scales" in p["error"] for p in failed)
    assert all(p["status"] == "ok" for p in doc["points"] if p["precision"] == "fp32")
    store = open_store(tmp_path / "harness.db")
    assert store.run_row(doc["run_id"])["status"] == "partial"
    assert store.run_row(doc["run_id"])["n_failed"] == 2
    store.close()


def test_a_runtime_the_target_lacks_is_refused_before_any_work(tmp_path):
    proc = harness("run", str(EXAMPLE), "--target", "x86-cpu", "--runtime", "tensorrt", "--results-dir", str(tmp_path))
    assert proc.returncode == 2 and "tensorrt" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "harness.db").exists()


def test_an_unknown_option_is_a_usage_error_with_exit_code_2_not_a_traceback(tmp_path):
    proc = harness("run", "--no-such-option", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "No such option: --no-such-option" in proc.stderr
    assert "Traceback" not in proc.stderr
