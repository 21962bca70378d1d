"""One (variant, runtime) job: score the artifact, measure it, store the points. Every executor
(local, or a fleet worker on the device) runs jobs through :func:`run_job`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.compress.variants import Variant, describe_recipe
from harness.errors import HarnessError, VariantError
from harness.records import OperatingPoint
from harness.stages.build import Job, artifact_for
from harness.stages.context import RunContext, RunState
from harness.stages.measure import measure_artifact
from harness.stages.score import score


def point_id(variant: Variant, runtime: str, batch: int) -> str:
    return f"{variant.name}@{runtime}/bs{batch}"


def failed_points(variant: Variant, runtime: str, batches: list[int], error: str) -> list[OperatingPoint]:
    return [
        OperatingPoint(
            point_id=point_id(variant, runtime, b),
            variant_id=variant.variant_id,
            variant_name=variant.name,
            runtime=runtime,
            batch_size=b,
            prune_method=variant.prune_method,
            prune_amount=variant.prune_amount,
            precision=variant.precision,
            status="failed",
            error=error,
            recipe=describe_recipe(variant),
        )
        for b in batches
    ]


def record(ctx: RunContext, state: RunState, job: Job, items: list, evaluation: dict[str, Any] | None = None) -> None:
    """Store one (variant, runtime): evaluation and points in a single transaction."""
    rows = [item if isinstance(item, tuple) else (item, None, None) for item in items]
    ctx.store.add_result(ctx.run_id, job.variant.variant_id, job.runtime, rows, evaluation)
    state.points.extend(point for point, _, _ in rows)


def run_job(ctx: RunContext, state: RunState, job: Job, dataset: Any) -> bool:
    """Score and measure one (variant, runtime) and store it; a failure is stored as failed points."""
    v, runtime, batches = job.variant, job.runtime, ctx.batch_sizes
    if isinstance(job.built, VariantError):
        record(ctx, state, job, failed_points(v, runtime, batches, str(job.built)))
        return False
    try:
        record(ctx, state, job, *_score_and_measure(ctx, state, job, dataset))
        return True
    except HarnessError as exc:
        msg = str(exc) if isinstance(exc, VariantError) else f"variant {v.name} on {runtime}: {exc}"
        record(ctx, state, job, failed_points(v, runtime, batches, msg))
        ctx.progress.log(f"[failed] {msg}")
        return False


def _score_and_measure(ctx: RunContext, state: RunState, job: Job, dataset: Any) -> tuple[list, dict[str, Any]]:
    v, runtime = job.variant, job.runtime
    path, artifact, engine = artifact_for(ctx, job)
    scored = score(ctx, state, v.name, runtime, path, dataset)
    key = (v.variant_id, runtime)
    state.pops.logits[key] = scored.logits
    if scored.calibration_logits is not None:
        state.pops.calib_logits[key] = scored.calibration_logits
    rows = max(ctx.batch_sizes)
    with tempfile.TemporaryDirectory(prefix="harness-inputs-") as tmp:
        inputs, reference = Path(tmp) / "eval_inputs.npy", Path(tmp) / "reference_logits.npy"
        np.save(inputs, dataset.evaluation.x[:rows])
        np.save(reference, scored.logits[:rows])  # the timed path's outputs must match these
        measured = measure_artifact(ctx, runtime, path, artifact.sha256, artifact.file_mb, inputs, reference)
    out = []
    for b in measured.batches:
        point = OperatingPoint(
            point_id=point_id(v, runtime, b.latency.batch_size),
            variant_id=v.variant_id,
            variant_name=v.name,
            runtime=runtime,
            batch_size=b.latency.batch_size,
            prune_method=v.prune_method,
            prune_amount=v.prune_amount,
            precision=v.precision,
            status="ok",
            artifact=artifact,
            accuracy=scored.accuracy,
            latency=b.latency,
            memory=measured.memory,
            energy=b.energy,
            engine=engine,
            device_state=b.device_state,
            gpu_timing=b.gpu_timing,
            recipe=describe_recipe(v),
        )
        out.append((point, b.warmup_ms, b.samples_ms))
    return out, scored.evaluation_record(dataset.evaluation)
