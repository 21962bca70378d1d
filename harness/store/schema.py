"""Tables, through SQLAlchemy Core so the same schema runs on SQLite and PostgreSQL.

Summary columns are typed for querying; the full record of each row is kept as JSON
beside them so nothing measured is lost. Raw latency samples and per-sample
predictions are stored, not only summaries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

SCHEMA_VERSION = 5


def _seeds_from_names(conn: Any) -> None:
    """Version 4 named a population member ``<variant>#seed<k>``: the seed becomes its column and the
    name its variant's; every other variant gets its run's seed."""
    run_seed = {r.run_id: int(json.loads(r.experiment_json or "{}").get("seed", 0))
                for r in conn.execute(runs.select())}
    for r in conn.execute(variants.select()).all():
        name, _, member = r.name.partition("#seed")
        seed = int(member) if member.isdigit() else run_seed.get(r.run_id, 0)
        conn.execute(variants.update().where((variants.c.run_id == r.run_id) & (variants.c.variant_id == r.variant_id))
                     .values(name=name, seed=seed))


#: how to bring an older store up to date: version -> steps (SQL, or a function of the connection)
#: taking it to version + 1
MIGRATIONS: dict[int, list[str | Callable[[Any], None]]] = {
    1: [
        "ALTER TABLE runs ADD COLUMN experiment_hash VARCHAR(64)",
        "ALTER TABLE runs ADD COLUMN n_expected INTEGER",
    ],
    2: [],  # version 3 only adds tables (jobs, blobs), which create_all makes
    3: ["ALTER TABLE runs ADD COLUMN report_json TEXT"],
    4: ["ALTER TABLE variants ADD COLUMN seed INTEGER", "ALTER TABLE variants ADD COLUMN spec_json TEXT",
        _seeds_from_names],
}

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("experiment_name", String(256), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("status", String(16), nullable=False),  # running | ok | partial | failed
    Column("n_failed", Integer),
    Column("experiment_json", Text, nullable=False),
    Column("experiment_hash", String(64)),  # same experiment -> same hash: finds an interrupted run
    Column("n_expected", Integer),  # operating points the run will have when complete
    Column("environment_json", Text),
    Column("dataset_json", Text),
    Column("selection_json", Text),
    Column("run_dir", Text),
    Column("card_path", Text),
    Column("plot_path", Text),
    Column("report_json", Text),  # the whole RunReport of a finished run: cards are re-rendered from it
)

variants = Table(
    "variants",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("variant_id", String(64), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("prune_method", String(32), nullable=False),
    Column("prune_amount", Float, nullable=False),
    Column("precision", String(16), nullable=False),
    Column("seed", Integer),  # of the baseline it is made from: another than the run's is a population member
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("details_json", Text),  # artifacts, MACs/params, parity, quantizer settings
    Column("spec_json", Text),  # the full variant spec (Variant.to_record): a worker rebuilds it exactly
    ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("variant_id", String(64), primary_key=True),
    Column("runtime", String(32), primary_key=True),
    Column("n_samples", Integer, nullable=False),
    Column("top1", Float, nullable=False),
    Column("worst_class_recall", Float, nullable=False),
    Column("accuracy_json", Text, nullable=False),
    Column("sample_index_json", Text, nullable=False),
    Column("labels_json", Text, nullable=False),
    Column("predictions_json", Text, nullable=False),
    Column("logits_npy", LargeBinary, nullable=False),
    ForeignKeyConstraint(["run_id", "variant_id"], ["variants.run_id", "variants.variant_id"]),
)

per_class = Table(
    "per_class",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("variant_id", String(64), primary_key=True),
    Column("runtime", String(32), primary_key=True),
    Column("class_name", String(256), primary_key=True),
    Column("support", Integer, nullable=False),
    Column("recall", Float),  # NULL: class absent from the evaluation split
    Column("delta_vs_dense", Float),
    ForeignKeyConstraint(
        ["run_id", "variant_id", "runtime"],
        ["evaluations.run_id", "evaluations.variant_id", "evaluations.runtime"],
    ),
)

operating_points = Table(
    "operating_points",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("point_id", String(128), primary_key=True),
    Column("variant_id", String(64), nullable=False),
    Column("runtime", String(32), nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("top1", Float),
    Column("worst_class_recall", Float),
    Column("p50_ms", Float),
    Column("p90_ms", Float),
    Column("p99_ms", Float),
    Column("peak_rss_mb", Float),
    Column("artifact_mb", Float),
    Column("energy_per_inference_mj", Float),
    Column("on_pareto_front", Boolean, nullable=False, default=False),
    Column("point_json", Text, nullable=False),
    ForeignKeyConstraint(["run_id", "variant_id"], ["variants.run_id", "variants.variant_id"]),
)

latency_samples = Table(
    "latency_samples",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("point_id", String(128), primary_key=True),
    Column("warmup_ms_json", Text, nullable=False),
    Column("samples_ms_json", Text, nullable=False),
    ForeignKeyConstraint(["run_id", "point_id"], ["operating_points.run_id", "operating_points.point_id"]),
)

# ------------------------------------------------------------------ fleet

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("target", String(128), nullable=False, index=True),
    Column("variant_id", String(64), nullable=False),
    Column("runtime", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # queued | running | done | failed
    Column("worker", String(256)),
    Column("lease_expires_at", Float),  # unix time; a running job past it returns to the queue
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("updated_at", Float),
    ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
)

blobs = Table(  # files a worker needs and cannot build itself: artifacts, the evaluation split
    "blobs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("name", String(256), primary_key=True),  # e.g. "artifact/<variant_id>/onnx", "eval.npz"
    Column("sha256", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    ForeignKeyConstraint(["run_id"], ["runs.run_id"]),
)
