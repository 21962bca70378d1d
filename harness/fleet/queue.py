"""A work queue in the results store: (run, variant, runtime) jobs claimed under a lease.

A claim is one atomic UPDATE of the oldest claimable job: queued, or running with an
expired lease (its worker died). PostgreSQL picks it with ``FOR UPDATE SKIP LOCKED``, so
concurrent workers never wait on each other's rows; SQLite serialises writers, which gives
the same guarantee. A worker that comes back after its lease expired cannot finish a job
another worker has since claimed.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from harness.store import schema as s
from harness.store.store import Store


@dataclass(frozen=True)
class Job:
    job_id: int
    run_id: str
    target: str
    variant_id: str
    runtime: str
    attempts: int


def enqueue(store: Store, run_id: str, target: str, pairs: list[tuple[str, str]]) -> int:
    now = time.time()
    with store.engine.begin() as conn:
        conn.execute(
            s.jobs.insert(),
            [
                {"run_id": run_id, "target": target, "variant_id": v, "runtime": r, "status": "queued",
                 "attempts": 0, "updated_at": now}
                for v, r in pairs
            ],
        )
    return len(pairs)


def claim(store: Store, target: str, worker: str, lease_s: float) -> Job | None:
    j = s.jobs
    now = time.time()
    claimable = (
        select(j.c.job_id)
        .where(
            and_(
                j.c.target == target,
                or_(j.c.status == "queued", and_(j.c.status == "running", j.c.lease_expires_at < now)),
            )
        )
        .order_by(j.c.job_id)
        .limit(1)
        .with_for_update(skip_locked=True)  # PostgreSQL; ignored by SQLite, which serialises writers
        .scalar_subquery()
    )
    with store.engine.begin() as conn:
        row = conn.execute(
            j.update()
            .where(j.c.job_id == claimable)
            .values(status="running", worker=worker, lease_expires_at=now + lease_s,
                    attempts=j.c.attempts + 1, updated_at=now)
            .returning(j.c.job_id, j.c.run_id, j.c.target, j.c.variant_id, j.c.runtime, j.c.attempts)
        ).first()
    return Job(*row) if row else None


def extend(store: Store, job: Job, worker: str, lease_s: float) -> bool:
    """Push the lease forward; False when the job is no longer this worker's."""
    j = s.jobs
    with store.engine.begin() as conn:
        result = conn.execute(
            j.update()
            .where(and_(j.c.job_id == job.job_id, j.c.worker == worker, j.c.status == "running"))
            .values(lease_expires_at=time.time() + lease_s, updated_at=time.time())
        )
    return result.rowcount == 1


def finish(store: Store, job: Job, worker: str, status: str, error: str | None = None) -> bool:
    """Mark a claimed job done or failed; False when its lease was lost to another worker."""
    j = s.jobs
    with store.engine.begin() as conn:
        result = conn.execute(
            j.update()
            .where(and_(j.c.job_id == job.job_id, j.c.worker == worker, j.c.status == "running"))
            .values(status=status, error=error, lease_expires_at=None, updated_at=time.time())
        )
    return result.rowcount == 1


def open_jobs(store: Store, run_id: str) -> int:
    j = s.jobs
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(j).where(and_(j.c.run_id == run_id, j.c.status.in_(["queued", "running"])))
            ).scalar_one()
        )


def job_counts(store: Store, run_id: str) -> dict[str, int]:
    j = s.jobs
    with store.engine.connect() as conn:
        rows = conn.execute(select(j.c.status, func.count()).where(j.c.run_id == run_id).group_by(j.c.status)).all()
    return {status: int(n) for status, n in rows}


def take_finalization(store: Store, run_id: str) -> bool:
    """True for exactly one caller once every job of the run is finished: that caller finalizes it."""
    if open_jobs(store, run_id):
        return False
    with store.engine.begin() as conn:
        result = conn.execute(
            s.runs.update()
            .where(and_(s.runs.c.run_id == run_id, s.runs.c.status.in_(["queued", "running"])))
            .values(status="finalizing")
        )
    return result.rowcount == 1


# ------------------------------------------------------------------ blobs


def put_blob(store: Store, run_id: str, name: str, data: bytes) -> None:
    with store.engine.begin() as conn:
        conn.execute(s.blobs.insert().values(run_id=run_id, name=name, sha256=hashlib.sha256(data).hexdigest(), data=data))


def get_blob(store: Store, run_id: str, name: str) -> tuple[bytes, str] | None:
    with store.engine.connect() as conn:
        row = conn.execute(
            select(s.blobs.c.data, s.blobs.c.sha256).where(and_(s.blobs.c.run_id == run_id, s.blobs.c.name == name))
        ).first()
    return (bytes(row.data), row.sha256) if row else None
