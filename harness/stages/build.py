"""Build stage: each variant's deployable files (cached), the (variant, runtime) jobs they make,
and the TensorRT engine a job builds on the device it runs on."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.artifacts import BuiltVariant, build_fp32, build_from_file, build_quantized
from harness.compress.variants import Variant
from harness.config import ExperimentSpec
from harness.errors import VariantError
from harness.export.tensorrt import engine_source
from harness.records import ArtifactInfo, EngineInfo
from harness.stages.context import RunContext, RunState

Built = dict[str, BuiltVariant | VariantError]  # variant_id -> its files, or why it has none


@dataclass(frozen=True)
class Job:
    """One variant on one runtime: scored, then measured at every batch size."""

    variant: Variant
    runtime: str
    built: BuiltVariant | VariantError


def require_installed(spec: ExperimentSpec, what: str, *, runtimes: bool = True) -> None:
    """:class:`~harness.errors.MissingDependency` (exit code 3, naming the ``pip install`` line) before a run
    starts when this machine lacks a library the run needs: the build stack (the build extra: torch,
    torch-pruning when it prunes, onnxscript when it exports ONNX) for a model that is not an ONNX file,
    and, with ``runtimes`` (the jobs run on this machine), each requested runtime's own library."""
    from harness import deps
    from harness.export.formats import FORMATS
    from harness.model_names import source_kind
    from harness.runtimes import RUNTIMES

    runners = [RUNTIMES.get(r) for r in spec.runtimes]
    if source_kind(spec.model.name) != "onnx":
        deps.require("torch", "build", what)
        if spec.prune:
            deps.require("torch_pruning", "build", what)
        if any(FORMATS[r.artifact_format].onnx_family for r in runners):
            deps.require("onnxscript", "build", what)
    for runner in runners if runtimes else []:
        runner.require_installed()


def check_onnx_operators(path: Path) -> None:
    """An onnxruntime session on the user's ONNX file, so an operator it lacks names the file before any
    variant is built; onnxruntime's shape inference cannot read external tensors, so a model with external
    data is checked with them embedded (under 2 GiB)."""
    from harness.models.sources import ONNX_EMBED_LIMIT, onnx_external_files
    from harness.runtimes.onnxrt import cpu_session

    external = onnx_external_files(path)
    if not external:
        cpu_session(path)
    elif path.stat().st_size + sum(f.stat().st_size for f in external) < ONNX_EMBED_LIMIT:
        import onnx

        cpu_session(path, model_bytes=onnx.load(str(path), load_external_data=True).SerializeToString())


def applicable(ctx: RunContext, state: RunState, variants: list[Variant], baseline: Any) -> list[Variant]:
    """A model given as a file (.onnx, .pt2) is deployed as it is: its pruning variants are skipped, said
    on the console and noted in the report; so are runtimes that cannot run an ONNX-only model."""
    from harness.export.formats import FORMATS
    from harness.models.sources import FIXED_ARTIFACT_NOTE
    from harness.runtimes import RUNTIMES

    spec = ctx.spec
    if baseline.origin not in ("trained", "loaded from cache"):
        state.notes.append(f"the dense baseline {spec.model.name} was not trained by this run: "
                           f"its weights come from the {baseline.origin} (cache key {baseline.key})")
    if not baseline.fixed:
        return variants
    kept = [v for v in variants if v.prune_method == "none"]
    skipped = [v.name for v in variants if v.prune_method != "none"]
    what = "an ONNX file" if baseline.kind == "onnx" else "a torch.export program"
    notes = []
    if skipped:
        notes.append(FIXED_ARTIFACT_NOTE.format(what=what, name=spec.model.name, skipped=", ".join(skipped)))
    if baseline.kind == "onnx":
        formats = {r: FORMATS[RUNTIMES.get(r).artifact_format] for r in spec.runtimes}
        torch_only = [r for r, f in formats.items() if not (f.onnx_family or f.built_on_device)]
        if torch_only:
            notes.append(f"runtimes {', '.join(torch_only)} skipped: an ONNX model has no torch.export program to run")
    for note in notes:
        state.notes.append(note)
        ctx.progress.log(f"[skipped] {note}")
    return kept


def build_variants(ctx: RunContext, variants: list[Variant], baseline: Any, model: Any, dataset: Any,
                   reduce_range: bool) -> Built:
    """Every variant's files; a variant that fails is recorded as failed (with its stage) and the rest go on.

    ``baseline``: the dense model's source (harness.models.sources.Baseline); ``model``: the module the
    fp32 variants are pruned from (another seed's for a population member)."""
    built: Built = {}
    cache = ctx.paths.cache_dir / "artifacts"
    with ctx.progress.task("compressing and exporting variants", total=len(variants)) as task:
        for v in variants:
            task.update(f"building {v.name}")
            try:
                if v.quant is None and baseline.fixed:
                    result = build_from_file(v, baseline.file, dataset, cache)
                elif v.quant is None:
                    result = build_fp32(v, model, dataset, ctx.spec.seed, cache, ctx.progress)
                else:
                    assert v.parent_id is not None  # a quantized variant is made from its fp32 parent
                    parent = built[v.parent_id]
                    if isinstance(parent, VariantError):
                        raise VariantError(v.name, "quantize", f"its fp32 parent failed ({parent.stage})")
                    result = build_quantized(v, parent, dataset, cache, ctx.progress, reduce_range=reduce_range)
                built[v.variant_id] = result
                ctx.store.upsert_variant(ctx.run_id, v, "ok", None, {**result.details, "cached": result.cached})
            except VariantError as exc:
                built[v.variant_id] = exc
                ctx.store.upsert_variant(ctx.run_id, v, "failed", str(exc), {})
                ctx.progress.log(f"[failed] {exc}")
            task.advance()
    return built


def plan_jobs(ctx: RunContext, state: RunState, variants: list[Variant], built: Built) -> list[Job]:
    """Every (variant, runtime) whose artifact format the runtime executes (failed builds included); a
    TensorRT job needs an ONNX file its engine can be built from, else the report says why it is missing."""
    from harness.export.formats import FORMATS
    from harness.runtimes import RUNTIMES

    jobs = []
    for v in variants:
        for runtime in ctx.spec.runtimes:
            result = built[v.variant_id]
            fmt = RUNTIMES.get(runtime).artifact_format
            if isinstance(result, VariantError) or fmt in result.files:
                jobs.append(Job(v, runtime, result))
            elif FORMATS[fmt].built_on_device:  # a TensorRT engine, built on the device that runs the job
                source, why_not = engine_source(result.files, v.quant.recipe if v.quant else None)
                if source is not None:
                    jobs.append(Job(v, runtime, result))
                elif not ctx.is_member(v.seed):  # population members are never timed
                    state.notes.append(f"{v.name} is not run on {runtime}: {why_not}.")
    return jobs


def build_engine(ctx: RunContext, v: Variant, result: BuiltVariant,
                 fmt: str = "tensorrt-engine") -> tuple[Path, ArtifactInfo, EngineInfo]:
    """Build (or reuse) the TensorRT engine of ``v`` for this device: (engine path, ArtifactInfo, EngineInfo);
    ``fmt`` is the engine's artifact format (its runner's)."""
    from harness.export.inspect import file_sha256, inspect_onnx
    from harness.export.tensorrt import EngineSpec, engine_info, engine_spec_for_target
    from harness.export.tensorrt import build_engine as build_trt_engine
    from harness.runtimes.tensorrt import cuda_device_name
    from harness.targets import load_target

    source_format, _ = engine_source(result.files, v.quant.recipe if v.quant else None)
    assert source_format is not None  # plan_jobs only plans an engine job with a source
    source = result.files[source_format]
    batches, sparse, options = ctx.batch_sizes, v.prune_method == "2:4", ctx.spec.tensorrt
    if ctx.spec.target:
        engine_spec = engine_spec_for_target(
            load_target(ctx.spec.target), batches, sparse_weights=sparse, use_dla=options.dla_core is not None,
            dla_core=options.dla_core or 0, workspace_mb=options.workspace_mb,
            builder_optimization_level=options.builder_optimization_level,
        )
    else:
        engine_spec = EngineSpec(tuple(batches), sparse_weights=sparse, workspace_mb=options.workspace_mb or 1024,
                                 builder_optimization_level=options.builder_optimization_level)
    ctx.progress.log(f"TensorRT engine for {v.name} (from {source.name})")
    build = build_trt_engine(source, engine_spec, ctx.paths.cache_dir / "engines", device_name=cuda_device_name())
    info = engine_info(build, source_format)
    artifact = replace(inspect_onnx(source), path=str(build.path), format=fmt, file_mb=info.engine_mb,
                       sha256=file_sha256(build.path))  # the file timed and scored is the engine
    return build.path, artifact, info


def artifact_for(ctx: RunContext, job: Job) -> tuple[Path, ArtifactInfo, EngineInfo | None]:
    """The file a job scores and times, its inspection, and its engine summary (TensorRT)."""
    from harness.export.formats import FORMATS, inspect_artifact
    from harness.runtimes import RUNTIMES

    assert isinstance(job.built, BuiltVariant)
    fmt = RUNTIMES.get(job.runtime).artifact_format
    if FORMATS[fmt].built_on_device and fmt not in job.built.files:
        return build_engine(ctx, job.variant, job.built, fmt)
    path = job.built.files[fmt]
    return path, inspect_artifact(path, fmt), None
