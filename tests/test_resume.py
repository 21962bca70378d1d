"""Nothing measured is lost: SIGKILL at random moments, resume, and get what one clean run gets."""

from __future__ import annotations

import json
import multiprocessing
import random
import signal
import subprocess
import sys
import time

import numpy as np

from harness.store import open_store
from tests.conftest import tiny_experiment

TINY = tiny_experiment(
    "tiny-resume",
    sections='[[prune]]\nmethod = "magnitude"\nsparsity = [0.5]\nfinetune_epochs = 1\n[[quantize]]\napply_to = ["dense"]',
    measure="batch_sizes = [1, 2]\nmin_duration_s = 0.2",
)


class Attempt:
    """One `harness run` process whose output goes to files (a killed process leaves no open pipe)."""

    count = 0

    def __init__(self, args: list[str], results) -> None:
        Attempt.count += 1
        self.out_path = results.parent / f"attempt-{Attempt.count}.out"
        self.err_path = results.parent / f"attempt-{Attempt.count}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "harness", "run", *args, "--results-dir", str(results)], stdout=out, stderr=err
            )

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        rc = self.proc.wait(timeout)
        return rc, self.out_path.read_text(), self.err_path.read_text()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def point_set(store_path, run_id: str) -> set[tuple[str, str, int, str]]:
    st = open_store(store_path)
    rows = {(r["variant_id"], r["runtime"], r["batch_size"], r["status"]) for r in st.points(run_id)}
    st.close()
    return rows


def test_killed_runs_resume_to_the_same_points_as_an_uninterrupted_run(tmp_path):
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    (tmp_path / "clean").mkdir()
    rc, out, err = Attempt([str(experiment), "--json"], tmp_path / "clean").finish()
    assert rc == 0, err[-2000:]
    reference = point_set(tmp_path / "clean" / "harness.db", json.loads(out)["run_id"])

    results = tmp_path / "killed"
    results.mkdir()
    rng = random.Random(7)
    kills = 0
    attempt = Attempt([str(experiment)], results)
    for _ in range(8):
        time.sleep(rng.uniform(0.5, 6.0))
        if attempt.proc.poll() is not None:
            break
        attempt.kill()
        kills += 1
        st = open_store(results / "harness.db") if (results / "harness.db").exists() else None
        unfinished = st.incomplete_runs() if st else []
        if st:
            st.close()
        attempt = Attempt(["--resume"] if unfinished else [str(experiment)], results)
    rc, out, err = attempt.finish()
    assert rc == 0, err[-2000:]
    assert kills >= 1

    st = open_store(results / "harness.db")
    finished = [r for r in st.runs() if r["status"] == "ok"]
    assert len(finished) == 1 and not st.incomplete_runs()  # one run, finished by resuming; none abandoned
    run_id = finished[0]["run_id"]
    st.close()
    assert point_set(results / "harness.db", run_id) == reference
    st = open_store(results / "harness.db")
    for row in st.points(run_id):  # no partial rows: every ok point has its samples and its evaluation
        assert row["p50_ms"] is not None and row["top1"] is not None
    assert st.count("latency_samples", run_id) == len(reference)
    assert st.count("evaluations", run_id) == len({(v, r) for v, r, _, _ in reference})
    st.close()


def _writer(store_path: str, run_id: str, n: int) -> None:
    from harness.compress.variants import Variant
    from harness.records import AccuracyStats, OperatingPoint

    st = open_store(store_path)
    acc = AccuracyStats(2, 1.0, {"a": 1.0}, {"a": 2}, 1.0, "a")
    st.create_run(run_id, "concurrent", "t", "{}", {}, "/tmp")
    for i in range(n):
        v = Variant(f"v{i}", f"variant-{i}", "none", 0.0, {}, None, None)
        st.upsert_variant(run_id, v, "ok", None, {})
        p = OperatingPoint(f"p{i}", v.variant_id, v.name, "onnxruntime", 1, "none", 0.0, "fp32", "ok", accuracy=acc)
        evaluation = {"accuracy": acc, "sample_index": np.arange(2), "labels": np.zeros(2, int), "logits": np.ones((2, 1))}
        st.add_result(run_id, v.variant_id, "onnxruntime", [(p, [], [1.0])], evaluation)
    st.close()


def test_two_processes_writing_one_sqlite_store_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.db")
    open_store(path).close()  # create the schema once, as the first `harness run` would
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, f"run-{k}", 40)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    st = open_store(path)
    assert [st.count("operating_points", f"run-{k}") for k in range(2)] == [40, 40]
    assert [st.count("evaluations", f"run-{k}") for k in range(2)] == [40, 40]
    st.close()


def test_a_plain_rerun_of_an_interrupted_experiment_says_how_to_resume(tmp_path):
    from harness.config import spec_hash
    from harness.experiment import load_experiment

    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY.replace("min_duration_s = 0.2", 'min_duration_s = 0.05\nisolation = "inline"'))
    spec = load_experiment(experiment)
    results = tmp_path / "results"
    st = open_store(results / "harness.db")
    st.create_run("interrupted-1", spec.name, "t", spec.canonical_json(), {}, str(results), experiment_hash=spec_hash(spec))
    st.close()
    rc, _, err = Attempt([str(experiment)], results).finish()
    assert rc == 0, err[-2000:]
    assert "harness run --resume interrupted-1" in " ".join(err.split())  # rich may wrap the line
