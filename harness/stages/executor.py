"""Executors: where the score-and-measure jobs of a run execute (as optimum-benchmark's launchers).

:class:`LocalExecutor` runs them here, one after another, and the run is finalized here;
:class:`harness.fleet.executor.QueueExecutor` queues them for fleet workers on the target device,
and the worker that completes the last job finalizes the run.
"""

from __future__ import annotations

from typing import Any, Protocol

from harness.stages.build import Job
from harness.stages.context import RunContext, RunState
from harness.stages.job import run_job


class Executor(Protocol):
    #: True when the run is finalized in this process once ``execute`` returns
    finalizes_here: bool

    def execute(self, ctx: RunContext, state: RunState, jobs: list[Job], dataset: Any) -> None: ...


class LocalExecutor:
    """Every job in this process, skipping those a resumed run already completed."""

    finalizes_here = True

    def execute(self, ctx: RunContext, state: RunState, jobs: list[Job], dataset: Any) -> None:
        ctx.store.update_run(ctx.run_id, n_expected=len(jobs) * len(ctx.batch_sizes))
        todo = [j for j in jobs if (j.variant.variant_id, j.runtime) not in state.done]
        with ctx.progress.task("evaluating and measuring", total=len(todo)) as task:
            for job in todo:
                task.update(f"{job.variant.name} on {job.runtime}")
                run_job(ctx, state, job, dataset)
                task.advance()
