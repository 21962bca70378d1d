"""The store on SQLite (always) and PostgreSQL (when HARNESS_TEST_POSTGRES_URL names a server).

Atomic per-(variant, runtime) writes, raw samples kept, migrations, and the queries that
resume needs.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import replace

import numpy as np
import pytest

from harness.compress.variants import Variant
from harness.errors import StoreError
from harness.records import AccuracyStats, LatencyStats, OperatingPoint
from harness.store import open_store
from harness.store import schema as s

PG_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        st = open_store(tmp_path / "h.db")
    else:
        if not PG_URL:
            pytest.skip("set HARNESS_TEST_POSTGRES_URL to a PostgreSQL database to run the PostgreSQL store tests")
        st = open_store(PG_URL)
    st.test_run_id = f"r-{secrets.token_hex(4)}"  # unique per test: a shared server keeps older rows
    yield st
    st.close()


VARIANT = Variant("v1", "dense", "none", 0.0, {}, None, None)
ACC = AccuracyStats(3, 2 / 3, {"a": 1.0, "b": None}, {"a": 3, "b": 0}, 1.0, "a")


def point(batch: int, status: str = "ok") -> OperatingPoint:
    lat = LatencyStats(batch, 3, 1, 1.5, None, None, 1.5, 0.1, 1.4, 1.6, 0.1, 600.0, p90_unavailable_reason="too few")
    return OperatingPoint(
        f"dense@onnxruntime/bs{batch}", "v1", "dense", "onnxruntime", batch, "none", 0.0, "fp32", status,
        error=None if status == "ok" else "boom", accuracy=ACC if status == "ok" else None,
        latency=lat if status == "ok" else None,
    )


def evaluation() -> dict:
    return {"accuracy": ACC, "sample_index": np.arange(3), "labels": np.zeros(3, int), "logits": np.eye(3, 2, dtype=np.float32)}


def start(store) -> str:
    run = store.test_run_id
    store.create_run(run, "exp", "2026-01-01T00:00:00", "{}", {"cpu": "x"}, "/tmp", experiment_hash="h1")
    store.upsert_variant(run, VARIANT, "ok", None, {"parity": 1.0})
    return run


def test_points_evaluation_and_raw_samples_round_trip(store):
    run = start(store)
    store.add_result(run, "v1", "onnxruntime", [(point(1), [9.0], [1.4, 1.5, 1.6]), (point(8), [], [2.0])], evaluation())
    store.rewrite_points(run, [replace(point(1), on_pareto_front=True), point(8)])
    rows = store.points(run)
    assert [r["batch_size"] for r in rows] == [1, 8]
    assert rows[0]["p50_ms"] == 1.5 and rows[0]["p90_ms"] is None
    assert bool(rows[0]["on_pareto_front"]) and not bool(rows[1]["on_pareto_front"])
    rebuilt = store.operating_points(run)
    assert rebuilt[0].on_pareto_front and rebuilt[0].latency.p90_unavailable_reason == "too few"
    assert rebuilt[0].accuracy.per_class_recall == {"a": 1.0, "b": None}
    assert store.count("latency_samples", run) == 2 and store.count("per_class", run) == 2
    with store.engine.connect() as conn:
        samples = conn.exec_driver_sql(
            f"SELECT samples_ms_json FROM latency_samples WHERE run_id = '{run}' AND point_id = 'dense@onnxruntime/bs1'"
        ).scalar()
    assert json.loads(samples) == [1.4, 1.5, 1.6]


def test_a_second_attempt_replaces_the_first_without_duplicates(store):
    run = start(store)
    store.add_result(run, "v1", "onnxruntime", [(point(1, "failed"), None, None)])
    assert store.completed_jobs(run) == set()
    store.add_result(run, "v1", "onnxruntime", [(point(1), [], [1.0])], evaluation())
    assert store.count("operating_points", run) == 1 and store.count("evaluations", run) == 1
    assert store.completed_jobs(run) == {("v1", "onnxruntime")}


def test_unfinished_runs_are_found_by_experiment(store):
    run = start(store)
    assert run in [r["run_id"] for r in store.incomplete_runs("h1")]
    assert run not in [r["run_id"] for r in store.incomplete_runs("other")]
    store.update_run(run, status="ok", finished_at="t", selection_json={"point_id": "x"})
    assert run not in [r["run_id"] for r in store.incomplete_runs()]
    assert json.loads(store.run_row(run)["selection_json"]) == {"point_id": "x"}


def test_sqlite_store_uses_wal(tmp_path):
    st = open_store(tmp_path / "h.db")
    with st.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    st.close()


def test_a_version_1_store_is_migrated_on_open(tmp_path):
    st = open_store(tmp_path / "h.db")
    with st.engine.begin() as conn:  # turn it back into what version 1 wrote
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN experiment_hash")
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN n_expected")
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN report_json")  # added by version 4
        conn.exec_driver_sql("ALTER TABLE variants DROP COLUMN seed")  # added by version 5
        conn.exec_driver_sql("ALTER TABLE variants DROP COLUMN spec_json")
        conn.exec_driver_sql("DROP TABLE jobs")  # tables of version 3
        conn.exec_driver_sql("DROP TABLE blobs")
        conn.exec_driver_sql("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        conn.exec_driver_sql(
            "INSERT INTO runs (run_id, experiment_name, started_at, status, experiment_json) "
            "VALUES ('old', 'exp', 't', 'ok', '{}')"
        )
    st.close()
    st = open_store(tmp_path / "h.db")
    assert st.run_row("old")["experiment_hash"] is None  # the columns exist again, old rows kept
    assert st.run_row("old")["report_json"] is None
    with st.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'schema_version'").scalar() == str(s.SCHEMA_VERSION)
    st.close()


def test_a_version_4_store_gets_seeds_from_member_names(tmp_path):
    """Version 4 named population members ``<variant>#seed<k>``; after migration the seed is a column and the
    name is the variant's, and the deployed variants carry their run's seed."""
    st = open_store(tmp_path / "h.db")
    with st.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE variants DROP COLUMN seed")
        conn.exec_driver_sql("ALTER TABLE variants DROP COLUMN spec_json")
        conn.exec_driver_sql("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
        conn.exec_driver_sql("INSERT INTO runs (run_id, experiment_name, started_at, status, experiment_json) "
                             "VALUES ('old', 'exp', 't', 'ok', '{\"seed\": 3}')")
        for vid, name in (("a", "dense"), ("b", "dense#seed4"), ("c", "magnitude-0.5#seed12")):
            conn.exec_driver_sql("INSERT INTO variants (run_id, variant_id, name, prune_method, prune_amount, precision, "
                                 f"status) VALUES ('old', '{vid}', '{name}', 'none', 0, 'fp32', 'ok')")
    st.close()
    st = open_store(tmp_path / "h.db")
    rows = {r["variant_id"]: (r["name"], r["seed"], r["spec_json"]) for r in st.variant_rows("old")}
    assert rows == {"a": ("dense", 3, None), "b": ("dense", 4, None), "c": ("magnitude-0.5", 12, None)}
    st.close()


def test_a_variant_is_stored_with_its_full_spec(tmp_path):
    from harness.config import QuantSpec

    st = open_store(tmp_path / "h.db")
    st.create_run("r", "exp", "t", "{}", {}, str(tmp_path))
    v = Variant("vid", "magnitude-0.5+int8", "magnitude", 0.5, {"scope": "layer", "finetune_epochs": 1},
                QuantSpec(per_channel=False), "parent", seed=7)
    st.upsert_variant("r", v, "ok", None, {})
    (row,) = st.variant_rows("r")
    assert row["seed"] == 7 and Variant.from_record(json.loads(row["spec_json"])) == v
    st.close()


def test_a_store_from_a_newer_harness_is_refused(tmp_path):
    st = open_store(tmp_path / "h.db")
    with st.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    st.close()
    with pytest.raises(StoreError, match="schema version 99, written by a newer harness"):
        open_store(tmp_path / "h.db")


def test_an_unopenable_store_is_a_store_error(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open results store"):
        open_store(tmp_path / "dir.db")
