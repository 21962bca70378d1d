"""Population stage: the other seeds of a population (Hooker et al.), trained, compressed and exported
like the deployed model, then scored on one runtime. Members are never timed: they exist so CIE and
CEV are computed over populations of models."""

from __future__ import annotations

from typing import Any

from harness.compress.variants import expand_variants
from harness.config import spec_hash
from harness.errors import HarnessError, VariantError
from harness.metrics import accuracy_stats
from harness.stages.build import build_variants
from harness.stages.context import RunContext, RunState
from harness.stages.score import evaluate


def member_runtime(runtimes: list[str]) -> str:
    """The runtime members are scored on: the first ONNX one, else the first."""
    from harness.export.formats import FORMATS
    from harness.runtimes import RUNTIMES

    onnx_runtimes = [r for r in runtimes if FORMATS[RUNTIMES.get(r).artifact_format].onnx_family]
    return (onnx_runtimes or runtimes)[0]


def score_member(ctx: RunContext, state: RunState, seed: int, baseline: Any, dataset: Any,
                 reduce_range: bool) -> None:
    """Seed ``seed``: train, compress and export like the primary, then score on one runtime only."""
    from harness.models.train import train_baseline
    from harness.runtimes import RUNTIMES

    spec = ctx.spec
    model, key, _ = train_baseline(
        spec.model, spec.train, dataset, spec_hash(spec.dataset, spec.seed), seed,
        ctx.paths.cache_dir / "models", ctx.progress,
    )
    members = expand_variants(spec, key, seed)
    built = build_variants(ctx, members, baseline, model, dataset, reduce_range)
    runtime = member_runtime(spec.runtimes)
    runner_cls = RUNTIMES.get(runtime)
    ev = dataset.evaluation
    with ctx.progress.task(f"scoring population member seed {seed}", total=len(members)) as task:
        for v in members:
            result = built[v.variant_id]
            if not isinstance(result, VariantError) and runner_cls.artifact_format in result.files:
                key_ = (v.variant_id, runtime)
                if key_ not in state.pops.logits:
                    try:
                        logits = evaluate(runner_cls, result.files[runner_cls.artifact_format], ev.x, ctx.threads)
                    except HarnessError as exc:
                        ctx.progress.log(f"[failed] population member {v.name} (seed {seed}): {exc}")
                        task.advance()
                        continue
                    accuracy = accuracy_stats(ev.y, logits.argmax(1), dataset.class_names)
                    evaluation = {"accuracy": accuracy, "sample_index": ev.index, "labels": ev.y, "logits": logits}
                    ctx.store.add_result(ctx.run_id, v.variant_id, runtime, [], evaluation)
                    state.pops.logits[key_] = logits
                # a member's logits move from the primaries' table to its variant's population
                state.pops.member_logits.setdefault(v.name, []).append(state.pops.logits.pop(key_))
            task.advance()


def stored_members(ctx: RunContext, state: RunState, variant_rows: list[dict[str, Any]]) -> None:
    """Move the stored logits of population members (scored by the submitter) into their populations;
    ``variant_rows``: the run's rows of the store's variants table."""
    rows = sorted((r for r in variant_rows if r["seed"] is not None and ctx.is_member(r["seed"])),
                  key=lambda r: (r["name"], r["seed"]))
    for r in rows:
        for (variant_id, runtime) in [k for k in state.pops.logits if k[0] == r["variant_id"]]:
            state.pops.member_logits.setdefault(r["name"], []).append(state.pops.logits.pop((variant_id, runtime)))
