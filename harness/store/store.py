"""Writing and reading runs. Every write is its own transaction: a crash loses at most
the record being written, never leaves half of one."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import StoreError
from harness.records import OperatingPoint, to_dict
from harness.store import schema as s


def _json(value: Any) -> str:
    return json.dumps(to_dict(value), sort_keys=True)


def _url(store: str | Path) -> str:
    text = str(store)
    if "://" in text:
        return text
    path = Path(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def open_store(store: str | Path) -> Store:
    return Store(_url(store))


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
            self._check_version()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open results store {url}: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}") from None

    def _check_version(self) -> None:
        from sqlalchemy import select

        with self.engine.begin() as conn:
            row = conn.execute(select(s.meta.c.value).where(s.meta.c.key == "schema_version")).first()
            if row is None:
                conn.execute(s.meta.insert().values(key="schema_version", value=str(s.SCHEMA_VERSION)))
            elif int(row.value) != s.SCHEMA_VERSION:
                raise StoreError(
                    f"results store {self.url} has schema version {row.value}; this harness reads version "
                    f"{s.SCHEMA_VERSION}"
                )

    # ------------------------------------------------------------------ writes

    def create_run(self, run_id: str, name: str, started_at: str, experiment_json: str, environment: Any, run_dir: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                s.runs.insert().values(
                    run_id=run_id,
                    experiment_name=name,
                    started_at=started_at,
                    status="running",
                    experiment_json=experiment_json,
                    environment_json=_json(environment),
                    run_dir=run_dir,
                )
            )

    def set_dataset(self, run_id: str, dataset_info: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(s.runs.update().where(s.runs.c.run_id == run_id).values(dataset_json=_json(dataset_info)))

    def add_variant(self, run_id: str, variant: Any, status: str, error: str | None, details: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                s.variants.insert().values(
                    run_id=run_id,
                    variant_id=variant.variant_id,
                    name=variant.name,
                    prune_method=variant.prune_method,
                    prune_amount=variant.prune_amount,
                    precision=variant.precision,
                    status=status,
                    error=error,
                    details_json=_json(details),
                )
            )

    def add_evaluation(
        self, run_id: str, variant_id: str, runtime: str, accuracy: Any, sample_index: np.ndarray,
        labels: np.ndarray, logits: np.ndarray,
    ) -> None:
        buf = io.BytesIO()
        np.save(buf, logits.astype(np.float32))
        with self.engine.begin() as conn:
            conn.execute(
                s.evaluations.insert().values(
                    run_id=run_id,
                    variant_id=variant_id,
                    runtime=runtime,
                    n_samples=accuracy.n_samples,
                    top1=accuracy.top1,
                    worst_class_recall=accuracy.worst_class_recall,
                    accuracy_json=_json(accuracy),
                    sample_index_json=json.dumps(sample_index.tolist()),
                    labels_json=json.dumps(labels.tolist()),
                    predictions_json=json.dumps(logits.argmax(1).tolist()),
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

    def add_point(self, run_id: str, point: OperatingPoint, warmup_ms: list[float] | None, samples_ms: list[float] | None) -> None:
        """One operating point and its raw samples, in one transaction."""
        m = point.metric
        with self.engine.begin() as conn:
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

    def finish_run(self, run_id: str, *, status: str, finished_at: str, n_failed: int, selection: Any,
                   front: list[str], card_path: str | None, plot_path: str | None) -> None:
        from sqlalchemy import and_

        with self.engine.begin() as conn:
            if front:
                for pid in front:
                    # keep point_json in step with the column
                    row = conn.execute(
                        s.operating_points.select().where(
                            and_(s.operating_points.c.run_id == run_id, s.operating_points.c.point_id == pid)
                        )
                    ).first()
                    record = json.loads(row.point_json)
                    record["on_pareto_front"] = True
                    conn.execute(
                        s.operating_points.update()
                        .where(and_(s.operating_points.c.run_id == run_id, s.operating_points.c.point_id == pid))
                        .values(on_pareto_front=True, point_json=json.dumps(record, sort_keys=True))
                    )
            conn.execute(
                s.runs.update()
                .where(s.runs.c.run_id == run_id)
                .values(
                    status=status,
                    finished_at=finished_at,
                    n_failed=n_failed,
                    selection_json=_json(selection),
                    card_path=card_path,
                    plot_path=plot_path,
                )
            )

    # ------------------------------------------------------------------ reads

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(s.runs.select().where(s.runs.c.run_id == run_id)).first()
        return dict(row._mapping) if row else None

    def points(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                s.operating_points.select().where(s.operating_points.c.run_id == run_id).order_by(s.operating_points.c.point_id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def count(self, table: str, run_id: str) -> int:
        from sqlalchemy import func, select

        t = s.metadata.tables[table]
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t).where(t.c.run_id == run_id)).scalar_one())

    def close(self) -> None:
        self.engine.dispose()
