"""What every stage of one run shares: the run's identity and settings (:class:`RunContext`) and
what it has produced so far (:class:`RunState`)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.analysis import Populations
from harness.config import ExperimentSpec, spec_hash
from harness.progress import ProgressReporter
from harness.records import AccuracyStats, OperatingPoint


@dataclass(frozen=True)
class RunPaths:
    results_dir: Path
    store: str

    @property
    def cache_dir(self) -> Path:
        return self.results_dir / "cache"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def default_threads() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


@dataclass
class RunState:
    """Everything a run has recorded so far; rebuilt from the store when a run is resumed."""

    points: list[OperatingPoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dense_accuracy: dict[str, AccuracyStats] = field(default_factory=dict)  # runtime -> the dense model's
    done: set[tuple[str, str]] = field(default_factory=set)  # (variant_id, runtime) complete in the store
    pops: Populations = field(default_factory=Populations)  # evaluation logits of every scored model


@dataclass
class RunContext:
    """One run: its spec, where it writes, and the settings every stage reads."""

    spec: ExperimentSpec
    paths: RunPaths
    progress: ProgressReporter
    store: Any  # harness.store.Store
    environment: Any  # harness.records.EnvironmentInfo
    run_id: str
    run_dir: Path
    started_at: str
    resumed: bool
    threads: int
    rule: Any  # harness.measure.latency.StoppingRule

    @property
    def experiment_hash(self) -> str:
        return spec_hash(self.spec)

    @property
    def batch_sizes(self) -> list[int]:
        return self.spec.measure.batch_sizes

    def is_member(self, seed: int) -> bool:
        """True for a population member: a model of another seed than the deployed one's."""
        return seed != self.spec.seed


def open_run(spec: ExperimentSpec, paths: RunPaths, progress: ProgressReporter,
             resume: str | None = None, *, run_dir: Path | None = None) -> tuple[RunContext, RunState]:
    """A new run, or (``resume``) a stored one with everything it completed.

    ``run_dir`` overrides the stored run folder (a fleet worker keeps its own copy)."""
    from harness.measure.environment import capture_environment
    from harness.measure.latency import resolve_rule
    from harness.store import open_store

    store = open_store(paths.store)
    state = RunState()
    if resume is None:
        run_id = new_run_id()
        folder, started_at = paths.results_dir / "runs" / run_id, now()
    else:
        row = store.run_row(resume)
        if row is None:
            from harness.errors import ConfigError

            raise ConfigError(f"no run {resume!r} in {paths.store}")
        run_id, folder, started_at = resume, Path(row["run_dir"]), row["started_at"]
        state.done = store.completed_jobs(resume)
        state.pops.logits = store.evaluation_logits(resume)
        state.points = [p for p in store.operating_points(resume) if (p.variant_id, p.runtime) in state.done]
        for p in state.points:
            if p.variant_name == "dense" and p.accuracy is not None:
                state.dense_accuracy[p.runtime] = p.accuracy
    ctx = RunContext(
        spec=spec, paths=paths, progress=progress, store=store, environment=capture_environment(),
        run_id=run_id, run_dir=run_dir or folder, started_at=started_at, resumed=resume is not None,
        threads=spec.measure.threads or default_threads(), rule=resolve_rule(spec.measure),
    )
    return ctx, state


def start_run(ctx: RunContext, state: RunState) -> None:
    """Create (or reopen) the run's folder and store row, and say what an earlier attempt left."""
    spec = ctx.spec
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    (ctx.run_dir / "config.resolved.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=2))
    if ctx.resumed:
        ctx.store.update_run(ctx.run_id, status="running", finished_at=None)
        ctx.progress.log(f"resuming run {ctx.run_id}: {len(state.points)} operating points already complete")
        return
    for row in ctx.store.incomplete_runs(ctx.experiment_hash):
        ctx.progress.log(
            f"run {row['run_id']} of this experiment stopped before it finished; "
            f"`harness run --resume {row['run_id']}` completes it instead of starting over"
        )
    ctx.store.create_run(
        ctx.run_id, spec.name, ctx.started_at, spec.canonical_json(), ctx.environment,
        str(ctx.run_dir), experiment_hash=ctx.experiment_hash,
    )
