"""The queue executor: a run's jobs go to the fleet instead of running here.

The submitting machine has built every artifact; the executor puts the files and the evaluation
split in the store beside the jobs, records the jobs whose build failed as failed points, and
leaves finalizing to the worker that completes the run's last job.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

import harness.fleet.queue as queue
from harness.errors import VariantError
from harness.stages.build import Job
from harness.stages.context import RunContext, RunState
from harness.stages.job import run_job

EVAL_BLOB = "eval.npz"
GROUP_LEVELS_BLOB = "group_levels.json"


def artifact_blob(variant_id: str, fmt: str) -> str:
    return f"artifact/{variant_id}/{fmt}"


class QueueExecutor:
    """Queue every buildable job for ``target``'s workers."""

    finalizes_here = False

    def __init__(self, target: str) -> None:
        self.target = target

    def execute(self, ctx: RunContext, state: RunState, jobs: list[Job], dataset: Any) -> None:
        ev = dataset.evaluation
        buf = io.BytesIO()
        np.savez(buf, x=ev.x, y=ev.y, index=ev.index, **{f"groups_{a}": g for a, g in ev.groups.items()})
        queue.put_blob(ctx.store, ctx.run_id, EVAL_BLOB, buf.getvalue())
        queue.put_blob(ctx.store, ctx.run_id, GROUP_LEVELS_BLOB, json.dumps(dataset.group_levels).encode())
        uploaded: set[str] = set()
        for job in jobs:
            if isinstance(job.built, VariantError) or job.variant.variant_id in uploaded:
                continue
            uploaded.add(job.variant.variant_id)
            for fmt, path in job.built.files.items():
                queue.put_blob(ctx.store, ctx.run_id, artifact_blob(job.variant.variant_id, fmt), Path(path).read_bytes())
        pending = []
        for job in jobs:
            if isinstance(job.built, VariantError):
                run_job(ctx, state, job, dataset)  # records the failed points right away
            else:
                pending.append((job.variant.variant_id, job.runtime))
        queue.enqueue(ctx.store, ctx.run_id, self.target, pending)
        ctx.store.update_run(ctx.run_id, status="queued", n_expected=len(jobs) * len(ctx.batch_sizes))
