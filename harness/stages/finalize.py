"""Finalize stage: deltas against the dense model, bias against the dense population, the Pareto front,
the selection policies, the notes, and the card, report.json and store rows of the finished run."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from harness.analysis import attach_bias, write_audit
from harness.compress.variants import Variant
from harness.model_names import base_model_name
from harness.pareto import pareto_front, parse_objective
from harness.records import DatasetInfo, OperatingPoint, RunReport, to_dict
from harness.report.figures import NO_PLOTS, plots_available
from harness.selection import rebase, select_for_spec
from harness.stages.context import RunContext, RunState, now


def rebase_on_dense(points: list[OperatingPoint], dense_id: str) -> list[OperatingPoint]:
    """Every point's accuracy deltas against the dense model on its own runtime (from the stored
    accuracies: on a fleet the dense job may have finished last)."""
    dense = {p.runtime: p for p in points if p.variant_id == dense_id and p.accuracy is not None}
    return [rebase([p], dense.get(p.runtime))[0] for p in points]


def run_notes(ctx: RunContext, points: list[OperatingPoint]) -> list[str]:
    """What a reader of the card must know about how this run measured."""
    spec, rule, notes = ctx.spec, ctx.rule, []
    if spec.population == 1:
        notes.append(
            "population = 1: CIE is plain disagreement between one dense and one compressed model; "
            "use population = 5 or more for the modal CIE of Hooker et al."
        )
    if not plots_available():
        notes.append(f"the card has no figures: {NO_PLOTS}")
    energy_reasons = {p.energy.unavailable_reason for p in points if p.energy and p.energy.unavailable_reason}
    notes += [f"energy not measured: {reason}" for reason in sorted(energy_reasons)]
    if spec.measure.profile == "quick":
        notes.append(
            "latency uses the quick measurement profile "
            f"(warm-up {rule.warmup_runs} runs and {rule.warmup_s} s, then at least "
            f"{rule.min_samples} samples and {rule.min_duration_s} s): fine for ranking, "
            "noisier than the standard profile."
        )
    return notes


def finalize(ctx: RunContext, state: RunState, variants: list[Variant], dataset: Any,
             dataset_info: DatasetInfo | None = None) -> RunReport:
    """Choose the operating point and write the run's card, report.json and final store rows.

    ``dataset_info``: the dataset's summary when only its evaluation split is at hand (a fleet worker)."""
    from harness.report.files import write_card_files

    spec, dense_id = ctx.spec, variants[0].variant_id
    points = rebase_on_dense(state.points, dense_id)
    points = attach_bias(points, state.pops, dense_id, dataset, cev_variant=spec.bias.cev_variant,
                         n_boot=spec.bias.n_boot, intersections=spec.groups.intersections)
    objectives = [parse_objective(o) for o in spec.selection.objectives]
    front: list[str] = []
    for b in spec.measure.batch_sizes:
        front += pareto_front([p for p in points if p.batch_size == b], objectives).front
    points = [replace(p, on_pareto_front=p.point_id in front) for p in points]
    selection = select_for_spec(points, spec.selection)  # all three policies and the knee
    chosen = next((p for p in points if p.point_id == selection.point_id), None)
    gallery = write_audit(variants, spec.runtimes, state.pops, dataset, ctx.run_dir, chosen)
    notes = state.notes + run_notes(ctx, points)
    n_failed = sum(p.status != "ok" for p in points)
    report = RunReport(
        run_id=ctx.run_id,
        experiment_name=spec.name,
        started_at=ctx.started_at,
        finished_at=now(),
        status="ok" if n_failed == 0 else "partial",
        dataset=dataset_info or dataset.info(),
        model_name=spec.model.name,
        baseline_variant_id=dense_id,
        points=points,
        objectives=[str(o) for o in objectives],
        selection=selection,
        environment=ctx.environment,
        run_dir=str(ctx.run_dir),
        card_path=str(ctx.run_dir / "card.md"),
        plot_path=str(ctx.run_dir / "front.png"),
        cie_gallery_path=str(gallery) if gallery else None,
        population=spec.population,
        target=spec.target,
        license=spec.card.license,
        base_model=base_model_name(spec.model.name, spec.model.checkpoint),
        store=ctx.paths.store,
        n_failed=n_failed,
        notes=notes,
    )
    write_card_files(report, ctx.run_dir, latency_samples=ctx.store.latency_samples(ctx.run_id))
    (ctx.run_dir / "report.json").write_text(json.dumps(to_dict(report), indent=2))
    ctx.store.rewrite_points(ctx.run_id, points)
    ctx.store.update_run(
        ctx.run_id, status=report.status, finished_at=report.finished_at, n_failed=n_failed,
        selection_json=selection, card_path=report.card_path, plot_path=report.plot_path,
        report_json=report,
    )
    return report
