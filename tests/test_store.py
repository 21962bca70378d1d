"""The SQLite store: WAL mode, typed rows, raw samples, and a clear error on a foreign schema."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.compress.variants import Variant
from harness.errors import StoreError
from harness.records import AccuracyStats, LatencyStats, OperatingPoint
from harness.store import open_store


def test_points_and_raw_samples_round_trip(tmp_path):
    store = open_store(tmp_path / "h.db")
    store.create_run("r1", "exp", "2026-01-01T00:00:00", "{}", {"cpu": "x"}, str(tmp_path))
    variant = Variant("v1", "dense", "none", 0.0, {}, None, None)
    store.add_variant("r1", variant, "ok", None, {"parity": 1.0})
    acc = AccuracyStats(3, 2 / 3, {"a": 1.0, "b": None}, {"a": 3, "b": 0}, 1.0, "a")
    store.add_evaluation("r1", "v1", "onnxruntime", acc, np.arange(3), np.array([0, 0, 0]), np.eye(3, 2, dtype=np.float32))
    lat = LatencyStats(1, 3, 1, 1.5, None, None, 1.5, 0.1, 1.4, 1.6, 0.1, 600.0, p90_unavailable_reason="too few")
    point = OperatingPoint("dense@onnxruntime/bs1", "v1", "dense", "onnxruntime", 1, "none", 0.0, "fp32", "ok", accuracy=acc, latency=lat)
    store.add_point("r1", point, [9.0], [1.4, 1.5, 1.6])
    store.finish_run("r1", status="ok", finished_at="t", n_failed=0, selection={"point_id": "x"},
                     front=["dense@onnxruntime/bs1"], card_path=None, plot_path=None)
    rows = store.points("r1")
    assert len(rows) == 1 and rows[0]["p50_ms"] == 1.5 and rows[0]["p90_ms"] is None
    assert rows[0]["on_pareto_front"] and json.loads(rows[0]["point_json"])["on_pareto_front"] is True
    assert store.count("latency_samples", "r1") == 1 and store.count("per_class", "r1") == 2
    assert store.run_row("r1")["status"] == "ok"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        samples = conn.exec_driver_sql("SELECT samples_ms_json FROM latency_samples").scalar()
    assert json.loads(samples) == [1.4, 1.5, 1.6]
    store.close()


def test_a_store_from_another_schema_version_is_refused(tmp_path):
    store = open_store(tmp_path / "h.db")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    store.close()
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(tmp_path / "h.db")


def test_an_unopenable_store_is_a_store_error(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open results store"):
        open_store(tmp_path / "dir.db")
