"""The one orchestrator: ``run_experiment(spec) -> RunReport``.

dataset -> baseline (trained or cached) -> build (variants pruned, exported, quantized; cached)
-> jobs (variant x runtime: score the artifact, measure it per batch size) on an executor
-> population (the other seeds, scored) -> finalize (store, Pareto front, selection, card).
Each stage is a module of :mod:`harness.stages`; this file only runs them in order.

A variant that fails is recorded as failed (with its error) and the sweep goes on.
"""

from __future__ import annotations

from pathlib import Path

from harness.config import ExperimentSpec, spec_hash
from harness.progress import ProgressReporter
from harness.records import RunReport
from harness.stages.context import RunContext, RunPaths, RunState, new_run_id, now, open_run, start_run
from harness.stages.executor import Executor, LocalExecutor
from harness.stages.score import EVAL_BATCH, evaluate

__all__ = ["EVAL_BATCH", "RunPaths", "evaluate", "new_run_id", "resumable_run", "run_experiment", "run_stages"]

REDUCE_RANGE_NOTE = (
    "int8 weights use onnxruntime's reduce_range (7-bit) because this CPU has no VNNI: full-range "
    "int8 saturates the 16-bit intermediate sums of onnxruntime's AVX2 kernels and loses accuracy."
)


def run_stages(ctx: RunContext, state: RunState, executor: Executor) -> RunReport | None:
    """Every stage of one run; the report, or None when ``executor`` leaves finalizing to others."""
    from harness.analysis import check_intersections
    from harness.compress.variants import expand_variants
    from harness.data import DATASETS
    from harness.measure.environment import cpu_has_vnni
    from harness.models.baseline import load_baseline
    from harness.stages import build, finalize, population

    spec = ctx.spec
    build.require_installed(spec, f"experiment {spec.name!r}", runtimes=isinstance(executor, LocalExecutor))
    start_run(ctx, state)
    try:
        dataset = DATASETS.get(spec.dataset.name)(spec.dataset, spec.seed)
        check_intersections(dataset, spec.groups.intersections)
        ctx.store.update_run(ctx.run_id, dataset_json=dataset.info())
        baseline = load_baseline(spec.model, spec.train, dataset, spec_hash(spec.dataset, spec.seed), spec.seed,
                                 ctx.paths.cache_dir / "models", ctx.progress)
        ctx.progress.log(f"baseline {spec.model.name}: {baseline.origin}")
        if baseline.file is not None and baseline.kind == "onnx" and "onnxruntime" in spec.runtimes:  # an operator it lacks names the file
            build.check_onnx_operators(baseline.file)
        variants = build.applicable(ctx, state, expand_variants(spec, baseline.key), baseline)
        reduce_range = not cpu_has_vnni(ctx.environment.cpu_flags)
        if reduce_range and spec.quantize:
            state.notes.append(REDUCE_RANGE_NOTE)
        built = build.build_variants(ctx, variants, baseline, baseline.model, dataset, reduce_range)
        executor.execute(ctx, state, build.plan_jobs(ctx, state, variants, built), dataset)
        for k in range(1, spec.population):
            population.score_member(ctx, state, spec.seed + k, baseline, dataset, reduce_range)
        if not executor.finalizes_here:
            return None
        return finalize.finalize(ctx, state, variants, dataset)
    except BaseException:
        ctx.store.update_run(ctx.run_id, status="failed", finished_at=now())
        raise


def resumable_run(store: str, run_id: str | None) -> tuple[str, ExperimentSpec]:
    """The run to resume (``None``: the latest unfinished one) and the experiment it was started with."""
    from harness.errors import ConfigError
    from harness.store import open_store

    st = open_store(store)
    try:
        if run_id is None:
            rows = st.incomplete_runs()
            if not rows:
                raise ConfigError(f"nothing to resume: every run in {store} finished")
            row = rows[-1]
        else:
            found = st.run_row(run_id)
            if found is None:
                raise ConfigError(f"no run {run_id!r} in {store}")
            if found["status"] == "ok":
                raise ConfigError(f"run {run_id} finished with every operating point ok; nothing to resume")
            row = found
    finally:
        st.close()
    return row["run_id"], ExperimentSpec.model_validate_json(row["experiment_json"])


def run_experiment(
    spec: ExperimentSpec,
    *,
    results_dir: Path = Path("results"),
    store: str | None = None,
    progress: ProgressReporter | None = None,
    resume: str | None = None,
) -> RunReport:
    """Run every stage of an experiment; every record goes to ``store`` (default results/harness.db).

    ``resume``: the id of an interrupted run of this experiment; operating points already
    complete in the store are kept and only the missing ones are built and measured.
    """
    paths = RunPaths(results_dir=Path(results_dir), store=store or str(Path(results_dir) / "harness.db"))
    ctx, state = open_run(spec, paths, progress or ProgressReporter(), resume)
    try:
        report = run_stages(ctx, state, LocalExecutor())
    finally:
        ctx.store.close()
    assert report is not None  # the local executor finalizes here
    return report
