"""Writing and reading runs through SQLAlchemy Core (SQLite by default, PostgreSQL by URL).

Every write is one transaction: the evaluation of a (variant, runtime) and all its
operating points land together or not at all, so a crash never leaves half a record
and a resumed run knows exactly what is missing.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import harness.store.schema as s
from harness.errors import StoreError
from harness.records import OperatingPoint, point_from_dict, to_dict

if TYPE_CHECKING:
    from harness.compress.variants import Variant


def _json(value: Any) -> str:
    return json.dumps(to_dict(value), sort_keys=True)


def _url(store: str | Path) -> str:
    text = str(store)
    if text.startswith(("postgresql://", "postgres://")):  # the driver we ship is psycopg 3
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if "://" in text:
        return text
    path = Path(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. --results-dir names a file
        why = "a file is where its folder should be" if isinstance(exc, FileExistsError | NotADirectoryError) else exc.strerror
        raise StoreError(f"cannot open results store {path}: {exc.filename or path.parent}: {why or exc}") from None
    return f"sqlite:///{path}"


def open_store(store: str | Path) -> Store:
    return Store(_url(store))


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {getattr(exc, 'orig', None) or exc}".splitlines()[0]


class Store:
    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine, event
        from sqlalchemy.exc import SQLAlchemyError

        self.url = url
        try:
            self.engine = create_engine(url)
            if url.startswith("sqlite"):

                @event.listens_for(self.engine, "connect")
                def _pragmas(dbapi_conn, _record):  # WAL: readers never block the writer
                    cur = dbapi_conn.cursor()
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA busy_timeout=30000")
                    cur.execute("PRAGMA foreign_keys=ON")
                    cur.close()

            s.metadata.create_all(self.engine)
            self._migrate()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open results store {url}: {_describe(exc)}") from None
        except ModuleNotFoundError as exc:  # a database driver (psycopg) is missing
            raise StoreError(f"cannot open results store {url}: driver {exc.name} is not installed") from None

    def _migrate(self) -> None:
        from sqlalchemy import select

        with self.engine.begin() as conn:
            row = conn.execute(select(s.meta.c.value).where(s.meta.c.key == "schema_version")).first()
            if row is None:
                conn.execute(s.meta.insert().values(key="schema_version", value=str(s.SCHEMA_VERSION)))
                return
            version = int(row.value)
            if version > s.SCHEMA_VERSION:
                raise StoreError(
                    f"results store {self.url} has schema version {version}, written by a newer harness; "
                    f"this one reads up to version {s.SCHEMA_VERSION}: upgrade harness"
                )
            while version < s.SCHEMA_VERSION:
                for step in s.MIGRATIONS[version]:
                    if callable(step):
                        step(conn)
                    else:
                        conn.exec_driver_sql(step)
                version += 1
            conn.execute(s.meta.update().where(s.meta.c.key == "schema_version").values(value=str(version)))

    # ------------------------------------------------------------------ writes

    def create_run(
        self, run_id: str, name: str, started_at: str, experiment_json: str, environment: Any, run_dir: str | None,
        experiment_hash: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                s.runs.insert().values(
                    run_id=run_id,
                    experiment_name=name,
                    started_at=started_at,
                    status="running",
                    experiment_json=experiment_json,
                    experiment_hash=experiment_hash,
                    environment_json=_json(environment),
                    run_dir=run_dir,
                )
            )

    def update_run(self, run_id: str, **values: Any) -> None:
        """Set run columns; records (dataset info, selection) are stored as JSON."""
        encoded = {k: (v if v is None or isinstance(v, str | int | float) else _json(v)) for k, v in values.items()}
        with self.engine.begin() as conn:
            conn.execute(s.runs.update().where(s.runs.c.run_id == run_id).values(**encoded))

    def upsert_variant(self, run_id: str, variant: Variant, status: str, error: str | None, details: dict) -> None:
        t = s.variants
        with self.engine.begin() as conn:
            key = (t.c.run_id == run_id) & (t.c.variant_id == variant.variant_id)
            values = dict(
                name=variant.name, prune_method=variant.prune_method, prune_amount=variant.prune_amount,
                precision=variant.precision, seed=variant.seed, status=status, error=error,
                details_json=_json(details), spec_json=json.dumps(variant.to_record(), sort_keys=True),
            )
            if conn.execute(t.update().where(key).values(**values)).rowcount == 0:
                conn.execute(t.insert().values(run_id=run_id, variant_id=variant.variant_id, **values))

    def add_result(
        self,
        run_id: str,
        variant_id: str,
        runtime: str,
        points: list[tuple[OperatingPoint, list[float] | None, list[float] | None]],
        evaluation: dict[str, Any] | None = None,
    ) -> None:
        """The evaluation (accuracy, labels, logits) and every point of one (variant, runtime), atomically.

        Rows left by an earlier attempt at the same (variant, runtime) are replaced.
        """
        with self.engine.begin() as conn:
            self._delete_result(conn, run_id, variant_id, runtime)
            if evaluation is not None:
                self._insert_evaluation(conn, run_id, variant_id, runtime, **evaluation)
            for point, warmup_ms, samples_ms in points:
                self._insert_point(conn, run_id, point, warmup_ms, samples_ms)

    def _delete_result(self, conn, run_id: str, variant_id: str, runtime: str) -> None:
        op, ls = s.operating_points, s.latency_samples
        pids = [
            r.point_id
            for r in conn.execute(
                op.select().where((op.c.run_id == run_id) & (op.c.variant_id == variant_id) & (op.c.runtime == runtime))
            )
        ]
        if pids:
            conn.execute(ls.delete().where((ls.c.run_id == run_id) & ls.c.point_id.in_(pids)))
            conn.execute(op.delete().where((op.c.run_id == run_id) & op.c.point_id.in_(pids)))
        for t in (s.per_class, s.evaluations):
            conn.execute(t.delete().where((t.c.run_id == run_id) & (t.c.variant_id == variant_id) & (t.c.runtime == runtime)))

    def _insert_evaluation(self, conn, run_id, variant_id, runtime, *, accuracy, sample_index, labels, logits) -> None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(logits, dtype=np.float32))
        conn.execute(
            s.evaluations.insert().values(
                run_id=run_id,
                variant_id=variant_id,
                runtime=runtime,
                n_samples=accuracy.n_samples,
                top1=accuracy.top1,
                worst_class_recall=accuracy.worst_class_recall,
                accuracy_json=_json(accuracy),
                sample_index_json=json.dumps(np.asarray(sample_index).tolist()),
                labels_json=json.dumps(np.asarray(labels).tolist()),
                predictions_json=json.dumps(np.asarray(logits).argmax(1).tolist()),
                logits_npy=buf.getvalue(),
            )
        )
        conn.execute(
            s.per_class.insert(),
            [
                {
                    "run_id": run_id,
                    "variant_id": variant_id,
                    "runtime": runtime,
                    "class_name": name,
                    "support": accuracy.per_class_support[name],
                    "recall": recall,
                    "delta_vs_dense": accuracy.per_class_delta.get(name),
                }
                for name, recall in accuracy.per_class_recall.items()
            ],
        )

    def _insert_point(self, conn, run_id: str, point: OperatingPoint, warmup_ms, samples_ms) -> None:
        m = point.metric
        conn.execute(
            s.operating_points.insert().values(
                run_id=run_id,
                point_id=point.point_id,
                variant_id=point.variant_id,
                runtime=point.runtime,
                batch_size=point.batch_size,
                status=point.status,
                error=point.error,
                top1=m("top1"),
                worst_class_recall=m("worst_class_recall"),
                p50_ms=m("p50_ms"),
                p90_ms=m("p90_ms"),
                p99_ms=m("p99_ms"),
                peak_rss_mb=m("peak_rss_mb"),
                artifact_mb=m("artifact_mb"),
                energy_per_inference_mj=m("energy_per_inference_mj"),
                on_pareto_front=point.on_pareto_front,
                point_json=_json(point),
            )
        )
        if samples_ms is not None:
            conn.execute(
                s.latency_samples.insert().values(
                    run_id=run_id,
                    point_id=point.point_id,
                    warmup_ms_json=json.dumps(warmup_ms or []),
                    samples_ms_json=json.dumps(samples_ms),
                )
            )

    def rewrite_points(self, run_id: str, points: list[OperatingPoint]) -> None:
        """Store the final form of each point (Pareto flag, bias record) in one transaction."""
        op = s.operating_points
        with self.engine.begin() as conn:
            for p in points:
                conn.execute(
                    op.update()
                    .where((op.c.run_id == run_id) & (op.c.point_id == p.point_id))
                    .values(on_pareto_front=p.on_pareto_front, point_json=_json(p))
                )

    # ------------------------------------------------------------------ reads

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(s.runs.select().where(s.runs.c.run_id == run_id)).first()
        return dict(row._mapping) if row else None

    def runs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(s.runs.select().order_by(s.runs.c.started_at, s.runs.c.run_id)).all()
        return [dict(r._mapping) for r in rows]

    def incomplete_runs(self, experiment_hash: str | None = None) -> list[dict[str, Any]]:
        """Runs that never finished (killed, crashed), newest last; optionally of one experiment."""
        return [
            r for r in self.runs()
            if r["status"] in ("running", "failed") and (experiment_hash is None or r["experiment_hash"] == experiment_hash)
        ]

    def points(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                s.operating_points.select().where(s.operating_points.c.run_id == run_id).order_by(s.operating_points.c.point_id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def operating_points(self, run_id: str) -> list[OperatingPoint]:
        return [point_from_dict(json.loads(r["point_json"])) for r in self.points(run_id)]

    def completed_jobs(self, run_id: str) -> set[tuple[str, str]]:
        """(variant_id, runtime) pairs whose points are all stored with status ok."""
        status: dict[tuple[str, str], bool] = {}
        for r in self.points(run_id):
            key = (r["variant_id"], r["runtime"])
            status[key] = status.get(key, True) and r["status"] == "ok"
        return {k for k, ok in status.items() if ok}

    def latency_samples(self, run_id: str) -> dict[str, list[float]]:
        """point_id -> the raw timed latency samples (ms) of every point of a run that stored them."""
        ls = s.latency_samples
        with self.engine.connect() as conn:
            rows = conn.execute(ls.select().where(ls.c.run_id == run_id).order_by(ls.c.point_id)).all()
        return {r.point_id: json.loads(r.samples_ms_json) for r in rows}

    def variant_rows(self, run_id: str) -> list[dict[str, Any]]:
        """Every variant of a run (population members included), in the order they were stored."""
        with self.engine.connect() as conn:
            rows = conn.execute(s.variants.select().where(s.variants.c.run_id == run_id)).all()
        return [dict(r._mapping) for r in rows]

    def evaluation_logits(self, run_id: str) -> dict[tuple[str, str], np.ndarray]:
        """(variant_id, runtime) -> the stored evaluation logits of a run."""
        with self.engine.connect() as conn:
            rows = conn.execute(s.evaluations.select().where(s.evaluations.c.run_id == run_id)).all()
        return {(r.variant_id, r.runtime): np.load(io.BytesIO(r.logits_npy)) for r in rows}

    def count(self, table: str, run_id: str) -> int:
        from sqlalchemy import func, select

        t = s.metadata.tables[table]
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t).where(t.c.run_id == run_id)).scalar_one())

    def close(self) -> None:
        self.engine.dispose()
