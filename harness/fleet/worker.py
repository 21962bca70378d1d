"""Submitting an experiment to a fleet, and the worker loop that drains the queue.

Both run the stages of :mod:`harness.stages`: ``submit`` runs a run's build and population stages with
the :class:`~harness.fleet.executor.QueueExecutor`; a worker reopens the run from the store, runs each
job it claims with :func:`harness.stages.job.run_job` and, on the run's last job, finalizes it.
"""

from __future__ import annotations

import io
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import harness.fleet.queue as queue
from harness.artifacts import BuiltVariant
from harness.atomic import atomic_write_bytes
from harness.compress.variants import Variant
from harness.config import ExperimentSpec, QuantSpec
from harness.data.base import Dataset, Split
from harness.errors import ConfigError, MissingDependency, StoreError
from harness.export.formats import FORMATS
from harness.fleet.executor import EVAL_BLOB, GROUP_LEVELS_BLOB, QueueExecutor, artifact_blob
from harness.progress import ProgressReporter
from harness.records import DatasetInfo, SplitInfo
from harness.stages.build import Job
from harness.stages.context import RunContext, RunPaths, RunState, open_run
from harness.store import open_store


def submit(spec: ExperimentSpec, targets: list[str], store: str, results_dir: Path,
           progress: ProgressReporter | None = None) -> dict[str, str]:
    """Build the experiment's artifacts here and queue one run per target. Returns target -> run id."""
    from harness.pipeline import run_stages

    if not targets:
        raise ConfigError("submit needs at least one --target")
    runs = {}
    for target in targets:  # the second target reuses the artifact cache: nothing is rebuilt
        ctx, state = open_run(spec, RunPaths(results_dir, store), progress or ProgressReporter())
        try:
            run_stages(ctx, state, QueueExecutor(target))
        finally:
            ctx.store.close()
        runs[target] = ctx.run_id
    return runs


@dataclass
class WorkSummary:
    worker: str
    done: int = 0
    failed: int = 0
    finalized: list[str] = field(default_factory=list)


def _blob(store: Any, run_id: str, name: str) -> bytes:
    found = queue.get_blob(store, run_id, name)
    if found is None:
        raise StoreError(f"run {run_id} has no {name} in the store: submit it again")
    return found[0]


def _dataset(store: Any, run_id: str) -> tuple[Dataset, DatasetInfo]:
    """The run's evaluation split (all a worker scores on) and the summary of the whole dataset."""
    info_dict = json.loads(store.run_row(run_id)["dataset_json"])
    info = DatasetInfo(**{**info_dict, "splits": [SplitInfo(**sp) for sp in info_dict["splits"]]})
    data = np.load(io.BytesIO(_blob(store, run_id, EVAL_BLOB)))
    levels = json.loads(_blob(store, run_id, GROUP_LEVELS_BLOB))
    groups = {k[len("groups_"):]: data[k] for k in data.files if k.startswith("groups_")}
    evaluation = Split("evaluation", data["x"], data["y"], data["index"], groups)
    empty = Split("unused", data["x"][:0], data["y"][:0], data["index"][:0])
    dataset = Dataset(info.name, info.class_names, empty, empty, evaluation, info.under_represented, levels,
                      info.preprocessing, info.description)
    return dataset, info


def _variant(row: dict[str, Any]) -> Variant:
    """The variant exactly as it was asked for; a store that predates variant specs gives its short form."""
    if row["spec_json"] is not None:
        return Variant.from_record(json.loads(row["spec_json"]))
    quant = None if row["precision"] == "fp32" else QuantSpec.model_construct(precision=row["precision"])
    return Variant(row["variant_id"], row["name"], row["prune_method"], row["prune_amount"], {}, quant, None,
                   row["seed"] or 0, recipe_known=False)


@dataclass
class _OpenRun:
    ctx: RunContext
    state: RunState
    variants: list[Variant]  # the deployed variants, dense first
    dataset: Dataset
    dataset_info: DatasetInfo


def _reopen(store: Any, run_id: str, results_dir: Path, store_url: str, progress: ProgressReporter) -> _OpenRun:
    from harness.stages.population import stored_members

    spec = ExperimentSpec.model_validate_json(store.run_row(run_id)["experiment_json"])
    ctx, state = open_run(spec, RunPaths(results_dir, store_url), progress, run_id,
                          run_dir=results_dir / "runs" / run_id)  # this machine's copy of the run folder
    rows = store.variant_rows(run_id)
    stored_members(ctx, state, rows)  # seeds 2..K were scored by the submitter
    variants = [_variant(r) for r in rows]
    primaries = sorted((v for v in variants if not ctx.is_member(v.seed)), key=lambda v: (v.name != "dense", v.name))
    dataset, info = _dataset(store, run_id)
    return _OpenRun(ctx, state, primaries, dataset, info)


def _materialise(store: Any, job: queue.Job, results_dir: Path) -> dict[str, Path]:
    files = {}
    for fmt, filename in FORMATS.files().items():
        blob = queue.get_blob(store, job.run_id, artifact_blob(job.variant_id, fmt))
        if blob is None:
            continue
        data, sha = blob
        path = results_dir / "cache" / "fleet" / sha / filename
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)
        files[fmt] = path
    return files


def work(store_url: str, target: str, results_dir: Path, progress: ProgressReporter | None = None, *,
         lease_s: float = 900.0, max_jobs: int | None = None, wait: bool = False, poll_s: float = 2.0,
         worker_id: str | None = None) -> WorkSummary:
    """Claim and run jobs for ``target`` until the queue is empty (or forever with ``wait``)."""
    from harness.runtimes import RUNTIMES
    from harness.stages.finalize import finalize
    from harness.stages.job import run_job

    progress = progress or ProgressReporter()
    summary = WorkSummary(worker_id or f"{socket.gethostname()}:{os.getpid()}")
    store = open_store(store_url)
    try:
        while max_jobs is None or summary.done + summary.failed < max_jobs:
            claimed = queue.claim(store, target, summary.worker, lease_s)
            if claimed is None:
                if not wait:
                    break
                time.sleep(poll_s)
                continue
            try:  # a runtime library this machine lacks: the job goes back to the queue, the worker exits 3
                RUNTIMES.get(claimed.runtime).require_installed()
            except MissingDependency:
                queue.finish(store, claimed, summary.worker, "queued")
                raise
            run = _reopen(store, claimed.run_id, results_dir, store_url, progress)
            try:
                variant = next(v for v in run.variants if v.variant_id == claimed.variant_id)
                built = BuiltVariant(variant, _materialise(store, claimed, results_dir), {}, cached=True)
                progress.log(f"job {claimed.job_id}: {variant.name} on {claimed.runtime} (attempt {claimed.attempts})")
                ok = run_job(run.ctx, run.state, Job(variant, claimed.runtime, built), run.dataset)
            finally:
                run.ctx.store.close()
            if queue.finish(store, claimed, summary.worker, "done" if ok else "failed"):
                summary.done += ok
                summary.failed += not ok
            if queue.take_finalization(store, claimed.run_id):
                final = _reopen(store, claimed.run_id, results_dir, store_url, progress)
                final.state.points = final.ctx.store.operating_points(claimed.run_id)  # failed jobs' points too
                try:
                    finalize(final.ctx, final.state, final.variants, final.dataset, final.dataset_info)
                finally:
                    final.ctx.store.close()
                summary.finalized.append(claimed.run_id)
    finally:
        store.close()
    return summary
