"""Submitting an experiment to a fleet, and the worker loop that drains the queue."""

from __future__ import annotations

import io
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.atomic import atomic_write_bytes
from harness.artifacts import FORMAT_FILES, BuiltVariant
from harness.compress.variants import Variant
from harness.config import ExperimentSpec, QuantSpec
from harness.data.base import Dataset, Split
from harness.errors import ConfigError, VariantError
import harness.fleet.queue as queue
from harness.pipeline import RunPaths, _Sweep
from harness.progress import ProgressReporter
from harness.records import DatasetInfo, SplitInfo
from harness.store import open_store
from harness.store import schema as s

EVAL_BLOB = "eval.npz"


def _artifact_blob(variant_id: str, fmt: str) -> str:
    return f"artifact/{variant_id}/{fmt}"


class _SubmitSweep(_Sweep):
    """Builds everything like a local run, then queues the (variant, runtime) jobs instead of running them."""

    def __init__(self, spec: ExperimentSpec, paths: RunPaths, progress: ProgressReporter, target: str) -> None:
        super().__init__(spec, paths, progress, None)
        self.target = target

    def _evaluate_and_measure(self, variants, built, dataset) -> None:
        ev = dataset.evaluation
        buf = io.BytesIO()
        np.savez(buf, x=ev.x, y=ev.y, index=ev.index, **{f"groups_{a}": g for a, g in ev.groups.items()})
        queue.put_blob(self.store, self.run_id, EVAL_BLOB, buf.getvalue())
        queue.put_blob(self.store, self.run_id, "group_levels.json", json.dumps(dataset.group_levels).encode())
        jobs = self._jobs(variants, built)
        for v, result in ((v, r) for v, r in built.items() if not isinstance(r, VariantError)):
            for fmt, path in result.files.items():
                queue.put_blob(self.store, self.run_id, _artifact_blob(v, fmt), Path(path).read_bytes())
        pending = []
        for v, runtime, result in jobs:
            if isinstance(result, VariantError):
                self._run_job(v, runtime, result, dataset)  # records the failed points right away
            else:
                pending.append((v.variant_id, runtime))
        queue.enqueue(self.store, self.run_id, self.target, pending)
        self.store.update_run(self.run_id, status="queued", n_expected=len(jobs) * len(self.spec.measure.batch_sizes))

    def _finish(self, variants):  # the worker that completes the last job finalizes the run
        return None


def submit(spec: ExperimentSpec, targets: list[str], store: str, results_dir: Path,
           progress: ProgressReporter | None = None) -> dict[str, str]:
    """Build the experiment's artifacts here and queue one run per target. Returns target -> run id."""
    if not targets:
        raise ConfigError("submit needs at least one --target")
    runs = {}
    for target in targets:  # the second target reuses the artifact cache: nothing is rebuilt
        sweep = _SubmitSweep(spec, RunPaths(results_dir, store), progress or ProgressReporter(), target)
        try:
            sweep.run()
        finally:
            sweep.store.close()
        runs[target] = sweep.run_id
    return runs


@dataclass
class WorkSummary:
    worker: str
    done: int = 0
    failed: int = 0
    finalized: list[str] = field(default_factory=list)


def _dataset(store, run_id: str) -> tuple[Dataset, DatasetInfo]:
    info_dict = json.loads(store.run_row(run_id)["dataset_json"])
    info = DatasetInfo(**{**info_dict, "splits": [SplitInfo(**sp) for sp in info_dict["splits"]]})
    data = np.load(io.BytesIO(queue.get_blob(store, run_id, EVAL_BLOB)[0]))
    levels = json.loads(queue.get_blob(store, run_id, "group_levels.json")[0])
    groups = {k[len("groups_"):]: data[k] for k in data.files if k.startswith("groups_")}
    evaluation = Split("evaluation", data["x"], data["y"], data["index"], groups)
    empty = Split("unused", data["x"][:0], data["y"][:0], data["index"][:0])
    dataset = Dataset(info.name, info.class_names, empty, empty, evaluation, info.under_represented, levels,
                      info.preprocessing, info.description)
    return dataset, info


def _variants(store, run_id: str) -> list[Variant]:
    """The run's primary variants, dense first (population members are named `<variant>#seed<k>`)."""
    with store.engine.connect() as conn:
        rows = conn.execute(s.variants.select().where(s.variants.c.run_id == run_id)).all()
    variants = [
        Variant(r.variant_id, r.name, r.prune_method, r.prune_amount, {},
                None if r.precision == "fp32" else QuantSpec.model_construct(precision=r.precision), None,
                recipe_known=False)
        for r in rows if "#seed" not in r.name
    ]
    return sorted(variants, key=lambda v: (v.name != "dense", v.name))


def _sweep_for(store, run_id: str, results_dir: Path, store_url: str, progress) -> tuple[_Sweep, list[Variant]]:
    spec = ExperimentSpec.model_validate_json(store.run_row(run_id)["experiment_json"])
    sweep = _Sweep(spec, RunPaths(results_dir, store_url), progress, run_id)
    sweep.run_dir = results_dir / "runs" / run_id  # this machine's copy of the run folder
    sweep.dataset, sweep.dataset_info = _dataset(store, run_id)
    variants = _variants(store, run_id)
    with store.engine.connect() as conn:
        member_rows = conn.execute(select_members(run_id)).all()
    for r in member_rows:  # seeds 2..K were scored by the submitter
        key = (r.variant_id, r.runtime)
        if key in sweep.pops.logits:
            sweep.pops.member_logits.setdefault(r.name.split("#")[0], []).append(sweep.pops.logits.pop(key))
    return sweep, variants


def select_members(run_id: str):
    from sqlalchemy import and_, select

    v, e = s.variants, s.evaluations
    return (
        select(e.c.variant_id, e.c.runtime, v.c.name)
        .join(v, and_(v.c.run_id == e.c.run_id, v.c.variant_id == e.c.variant_id))
        .where(and_(e.c.run_id == run_id, v.c.name.like("%#seed%")))
        .order_by(v.c.name)
    )


def _materialise(store, job: queue.Job, results_dir: Path) -> dict[str, Path]:
    files = {}
    for fmt, filename in FORMAT_FILES.items():
        blob = queue.get_blob(store, job.run_id, _artifact_blob(job.variant_id, fmt))
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
    progress = progress or ProgressReporter()
    summary = WorkSummary(worker_id or f"{socket.gethostname()}:{os.getpid()}")
    store = open_store(store_url)
    try:
        while max_jobs is None or summary.done + summary.failed < max_jobs:
            job = queue.claim(store, target, summary.worker, lease_s)
            if job is None:
                if not wait:
                    break
                time.sleep(poll_s)
                continue
            sweep, variants = _sweep_for(store, job.run_id, results_dir, store_url, progress)
            try:
                variant = next(v for v in variants if v.variant_id == job.variant_id)
                built = BuiltVariant(variant, _materialise(store, job, results_dir), {}, cached=True)
                progress.log(f"job {job.job_id}: {variant.name} on {job.runtime} (attempt {job.attempts})")
                ok = sweep._run_job(variant, job.runtime, built, sweep.dataset)
            finally:
                sweep.store.close()
            if queue.finish(store, job, summary.worker, "done" if ok else "failed"):
                summary.done += ok
                summary.failed += not ok
            if queue.take_finalization(store, job.run_id):
                final, variants = _sweep_for(store, job.run_id, results_dir, store_url, progress)
                final.points = final.store.operating_points(job.run_id)  # failed jobs' points too
                try:
                    final._finish(variants)
                finally:
                    final.store.close()
                summary.finalized.append(job.run_id)
    finally:
        store.close()
    return summary
