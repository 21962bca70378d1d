"""A fleet on one store (SQLite always, PostgreSQL when HARNESS_TEST_POSTGRES_URL is set):
two workers drain one queue, every job runs once, a dead worker's job comes back."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time

import pytest

from harness.fleet import queue
from harness.store import open_store
from tests.conftest import tiny_experiment

TINY = tiny_experiment(
    "tiny-fleet",
    sections='[[prune]]\nmethod = "magnitude"\nsparsity = [0.5]\nfinetune_epochs = 0\n'
    '[[quantize]]\napply_to = ["dense", "magnitude-0.5"]',
)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "fleet.db")
    url = os.environ.get("HARNESS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set HARNESS_TEST_POSTGRES_URL to run the fleet tests on PostgreSQL")
    return url


def harness(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_workers_drain_one_queue_and_the_last_finalizes(store_url, tmp_path):
    target = f"cpu-{secrets.token_hex(3)}"  # unique: a shared PostgreSQL keeps other tests' jobs
    (tmp_path / "tiny.toml").write_text(TINY)
    sub = harness("submit", str(tmp_path / "tiny.toml"), "--target", target, "--store", store_url,
                  "--results-dir", str(tmp_path / "submitter"))
    out, err = sub.communicate(timeout=300)
    assert sub.returncode == 0, err[-2000:]
    st = open_store(store_url)
    run_id = next(r["run_id"] for r in reversed(st.runs()) if r["status"] == "queued" and r["experiment_name"] == "tiny-fleet")
    assert queue.job_counts(st, run_id) == {"queued": 4}  # dense, magnitude-0.5, and their int8 copies
    st.close()

    workers = [harness("worker", "--target", target, "--store", store_url, "--results-dir", str(tmp_path / f"w{k}"))
               for k in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [o[1][-1500:] for o in outputs]
    done = [int(re.search(r"(\d+) job\(s\) done", o[0]).group(1)) for o in outputs]
    assert sum(done) == 4  # every job ran exactly once across the two workers

    st = open_store(store_url)
    assert queue.job_counts(st, run_id) == {"done": 4}
    row = st.run_row(run_id)
    assert row["status"] == "ok" and row["selection_json"] is not None
    points = st.points(run_id)
    assert len(points) == 4 and len({p["point_id"] for p in points}) == 4
    assert all(p["status"] == "ok" and p["p50_ms"] is not None for p in points)
    assert sum("finalized runs: " + run_id in o[0] for o in outputs) == 1  # exactly one worker finalized
    # a worker rebuilds each variant from its stored spec: its points say how the variant was made
    recipes = {p.variant_name: p.recipe for p in st.operating_points(run_id)}
    assert recipes["magnitude-0.5+int8"].startswith("magnitude pruning to 50% sparsity (global, one-shot)")
    assert "int8 static QDQ" in recipes["magnitude-0.5+int8"] and recipes["dense"] == "dense (no pruning)"
    st.close()


def test_a_dead_workers_job_returns_to_the_queue_after_its_lease(store_url, tmp_path):
    st = open_store(store_url)
    run_id = f"lease-{secrets.token_hex(3)}"
    target = f"t-{run_id}"
    st.create_run(run_id, "lease", "t", "{}", {}, "/tmp")
    queue.enqueue(st, run_id, target, [("v1", "onnxruntime")])
    first = queue.claim(st, target, "worker-a", lease_s=0.2)
    assert first is not None and queue.claim(st, target, "worker-b", lease_s=60) is None  # leased
    time.sleep(0.3)  # worker-a dies silently; its lease runs out
    second = queue.claim(st, target, "worker-b", lease_s=60)
    assert second is not None and second.job_id == first.job_id and second.attempts == 2
    assert not queue.finish(st, first, "worker-a", "done")  # the late worker cannot finish it any more
    assert queue.finish(st, second, "worker-b", "done")
    assert queue.job_counts(st, run_id) == {"done": 1}
    assert queue.take_finalization(st, run_id) and not queue.take_finalization(st, run_id)
    st.close()
