"""The one orchestrator: ``run_experiment(spec) -> RunReport``.

dataset -> baseline (trained or cached) -> variants (pruned, exported, quantized; cached)
-> for each variant x runtime: accuracy pass on the artifact, performance pass per batch
size -> store -> Pareto front + selection -> model card, plot, report.json.

A variant that fails is recorded as failed (with its error) and the sweep goes on.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from harness.analysis import Populations, attach_bias, check_intersections, evaluation_groups, write_audit
from harness.artifacts import BuiltVariant, build_fp32, build_from_file, build_quantized
from harness.compress.variants import Variant, describe_recipe, expand_variants
from harness.config import ExperimentSpec, spec_hash
from harness.errors import HarnessError, VariantError
from harness.export.tensorrt import engine_source
from harness.measure.latency import resolve_rule
from harness.measure.launch import measure
from harness.measure.worker import IDLE_BASELINE_S, MeasureRequest
from harness.metrics import accuracy_stats, against_baseline
from harness.metrics.groups import top_k_accuracy
from harness.pareto import parse_objective, pareto_front
from harness.progress import ProgressReporter
from harness.records import (
    AccuracyStats,
    DeviceState,
    EnergyStats,
    GpuTiming,
    LatencyStats,
    MemoryStats,
    OperatingPoint,
    RunReport,
    to_dict,
)
from harness.selection import select_for_spec
from harness.store import open_store

EVAL_BATCH = 256


@dataclass(frozen=True)
class RunPaths:
    results_dir: Path
    store: str

    @property
    def cache_dir(self) -> Path:
        return self.results_dir / "cache"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def default_threads() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def _point_id(variant: Variant, runtime: str, batch: int) -> str:
    return f"{variant.name}@{runtime}/bs{batch}"


def _failed_points(variant: Variant, runtime: str, batches: list[int], error: str) -> list[OperatingPoint]:
    return [
        OperatingPoint(
            point_id=_point_id(variant, runtime, b),
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


def evaluate(runner_cls, artifact: Path, x: np.ndarray, threads: int) -> np.ndarray:
    """Accuracy pass: the artifact through the runtime over the whole evaluation split."""
    with runner_cls(artifact, threads=threads) as runner:
        runner.set_input_shape(tuple(x.shape[1:]))
        batch, pad = runner.evaluation_batch(EVAL_BATCH)
        chunks = []
        for i in range(0, len(x), batch):
            chunk = x[i : i + batch]
            if pad and len(chunk) < batch:  # a static-profile engine: pad with zeros, keep the real rows
                filler = np.zeros((batch - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, filler])
            chunks.append(runner.infer(chunk)[: min(batch, len(x) - i)])
        logits = np.concatenate(chunks)
    if not np.all(np.isfinite(logits)):
        raise HarnessError(
            f"{np.count_nonzero(~np.isfinite(logits))} NaN / infinite outputs on the evaluation split "
            f"({len(x)} images): the point is not scored"
        )
    return logits


class _Sweep:
    """State of one run while it executes; ``run_experiment`` is its only user."""

    def __init__(self, spec: ExperimentSpec, paths: RunPaths, progress: ProgressReporter, resume: str | None) -> None:
        from harness.measure.environment import capture_environment

        self.spec = spec
        self.paths = paths
        self.progress = progress
        self.store = open_store(paths.store)
        self.environment = capture_environment()
        self.threads = spec.measure.threads or default_threads()
        self.rule = resolve_rule(spec.measure)
        self.experiment_hash = spec_hash(spec)
        self.points: list[OperatingPoint] = []
        self.notes: list[str] = []
        self.dense_accuracy: dict[str, AccuracyStats] = {}
        self.done: set[tuple[str, str]] = set()  # (variant_id, runtime) already complete in the store
        self.pops = Populations()  # evaluation logits of every scored model, for population metrics
        self.dataset_info = None  # set when only the evaluation split is at hand (a fleet worker)
        self.baseline = None  # the dense model's source (harness.models.sources.Baseline), once loaded
        if resume is None:
            self.run_id = new_run_id()
            self.run_dir = paths.results_dir / "runs" / self.run_id
            self.started_at = _now()
            self.resumed = False
        else:
            row = self.store.run_row(resume)
            self.run_id, self.run_dir, self.started_at = resume, Path(row["run_dir"]), row["started_at"]
            self.resumed = True
            self.done = self.store.completed_jobs(resume)
            self.pops.logits = self.store.evaluation_logits(resume)
            self.points = [p for p in self.store.operating_points(resume) if (p.variant_id, p.runtime) in self.done]
            for p in self.points:
                if p.variant_name == "dense" and p.accuracy is not None:
                    self.dense_accuracy[p.runtime] = p.accuracy

    # ------------------------------------------------------------------ stages

    def run(self) -> RunReport:
        from harness.data import DATASETS
        from harness.measure.environment import cpu_has_vnni
        from harness.models.baseline import load_baseline

        spec = self.spec
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.resolved.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=2))
        if self.resumed:
            self.store.update_run(self.run_id, status="running", finished_at=None)
            self.progress.log(f"resuming run {self.run_id}: {len(self.points)} operating points already complete")
        else:
            for row in self.store.incomplete_runs(self.experiment_hash):
                self.progress.log(
                    f"run {row['run_id']} of this experiment stopped before it finished; "
                    f"`harness run --resume {row['run_id']}` completes it instead of starting over"
                )
            self.store.create_run(
                self.run_id, spec.name, self.started_at, spec.canonical_json(), self.environment,
                str(self.run_dir), experiment_hash=self.experiment_hash,
            )
        try:
            dataset = DATASETS.get(spec.dataset.name)(spec.dataset, spec.seed)
            self.dataset = dataset
            check_intersections(dataset, spec.groups.intersections)
            self.store.update_run(self.run_id, dataset_json=dataset.info())
            baseline = load_baseline(
                spec.model, spec.train, dataset, spec_hash(spec.dataset, spec.seed), spec.seed,
                self.paths.cache_dir / "models", self.progress,
            )
            self.progress.log(f"baseline {spec.model.name}: {baseline.origin}")
            if baseline.kind == "onnx" and "onnxruntime" in spec.runtimes:  # an operator it lacks: the user's file named, before any variant
                self._check_onnx_operators(baseline.file)
            variants = self._applicable(expand_variants(spec, baseline.key), baseline)
            reduce_range = not cpu_has_vnni(self.environment.cpu_flags)
            if reduce_range and spec.quantize:
                self.notes.append(
                    "int8 weights use onnxruntime's reduce_range (7-bit) because this CPU has no VNNI: full-range "
                    "int8 saturates the 16-bit intermediate sums of onnxruntime's AVX2 kernels and loses accuracy."
                )
            built = self._build(variants, baseline.model, dataset, reduce_range)
            self._evaluate_and_measure(variants, built, dataset)
            for k in range(1, spec.population):
                self._population_member(spec.seed + k, dataset, reduce_range)
            return self._finish(variants)
        except BaseException:
            self.store.update_run(self.run_id, status="failed", finished_at=_now())
            raise

    @staticmethod
    def _check_onnx_operators(path: Path) -> None:
        """An onnxruntime session on the user's ONNX file; onnxruntime's shape inference cannot read
        external tensors, so a model with external data is checked with them embedded (under 2 GiB)."""
        from harness.models.sources import ONNX_EMBED_LIMIT, onnx_external_files
        from harness.runtimes.onnxrt import cpu_session

        external = onnx_external_files(path)
        if not external:
            cpu_session(path)
        elif path.stat().st_size + sum(f.stat().st_size for f in external) < ONNX_EMBED_LIMIT:
            import onnx

            cpu_session(path, model_bytes=onnx.load(str(path), load_external_data=True).SerializeToString())

    def _applicable(self, variants: list[Variant], baseline) -> list[Variant]:
        """A model given as a file (.onnx, .pt2) is deployed as it is: its pruning variants are skipped, said
        on the console and noted in the report; so are runtimes that cannot run an ONNX-only model."""
        from harness.models.sources import FIXED_ARTIFACT_NOTE
        from harness.runtimes import RUNTIMES

        self.baseline = baseline
        if baseline.origin not in ("trained", "loaded from cache"):
            self.notes.append(f"the dense baseline {self.spec.model.name} was not trained by this run: "
                              f"its weights come from the {baseline.origin} (cache key {baseline.key})")
        if not baseline.fixed:
            return variants
        kept = [v for v in variants if v.prune_method == "none"]
        skipped = [v.name for v in variants if v.prune_method != "none"]
        what = "an ONNX file" if baseline.kind == "onnx" else "a torch.export program"
        if skipped:
            note = FIXED_ARTIFACT_NOTE.format(what=what, name=self.spec.model.name, skipped=", ".join(skipped))
            self.notes.append(note)
            self.progress.log(f"[skipped] {note}")
        if baseline.kind == "onnx":
            torch_only = [r for r in self.spec.runtimes if RUNTIMES.get(r).artifact_format == "torch.export"]
            if torch_only:
                note = f"runtimes {', '.join(torch_only)} skipped: an ONNX model has no torch.export program to run"
                self.notes.append(note)
                self.progress.log(f"[skipped] {note}")
        return kept

    def _population_member(self, seed: int, dataset, reduce_range: bool) -> None:
        """Seed ``seed``: train, compress and export like the primary, then score on one runtime only.

        Members are never timed: they exist so CIE and CEV are computed over populations of models.
        """
        from harness.models.train import train_baseline
        from harness.runtimes import RUNTIMES

        spec = self.spec
        baseline, key, _ = train_baseline(
            spec.model, spec.train, dataset, spec_hash(spec.dataset, spec.seed), seed,
            self.paths.cache_dir / "models", self.progress,
        )
        members = [replace(v, name=f"{v.name}#seed{seed}") for v in expand_variants(spec, key)]
        built = self._build(members, baseline, dataset, reduce_range)
        onnx_runtimes = [r for r in spec.runtimes if RUNTIMES.get(r).artifact_format == "onnx"]
        runtime = (onnx_runtimes or spec.runtimes)[0]  # members are scored on one runtime, preferably ONNX
        runner_cls = RUNTIMES.get(runtime)
        ev = dataset.evaluation
        with self.progress.task(f"scoring population member seed {seed}", total=len(members)) as task:
            for v in members:
                result = built[v.variant_id]
                primary = v.name.split("#")[0]
                if not isinstance(result, VariantError) and runner_cls.artifact_format in result.files:
                    key_ = (v.variant_id, runtime)
                    if key_ not in self.pops.logits:
                        try:
                            logits = evaluate(runner_cls, result.files[runner_cls.artifact_format], ev.x, self.threads)
                        except HarnessError as exc:
                            self.progress.log(f"[failed] population member {v.name}: {exc}")
                            task.advance()
                            continue
                        accuracy = accuracy_stats(ev.y, logits.argmax(1), dataset.class_names)
                        evaluation = {"accuracy": accuracy, "sample_index": ev.index, "labels": ev.y, "logits": logits}
                        self.store.add_result(self.run_id, v.variant_id, runtime, [], evaluation)
                        self.pops.logits[key_] = logits
                    # a member's logits move from the primaries' table to its variant's population
                    self.pops.member_logits.setdefault(primary, []).append(self.pops.logits.pop(key_))
                task.advance()

    def _build(self, variants: list[Variant], baseline, dataset, reduce_range: bool) -> dict[str, BuiltVariant | VariantError]:
        built: dict[str, BuiltVariant | VariantError] = {}
        cache = self.paths.cache_dir / "artifacts"
        with self.progress.task("compressing and exporting variants", total=len(variants)) as task:
            for v in variants:
                task.update(f"building {v.name}")
                try:
                    if v.quant is None and self.baseline is not None and self.baseline.fixed:
                        result = build_from_file(v, self.baseline.file, dataset, cache)
                    elif v.quant is None:
                        result = build_fp32(v, baseline, dataset, self.spec.seed, cache, self.progress)
                    else:
                        parent = built[v.parent_id]
                        if isinstance(parent, VariantError):
                            raise VariantError(v.name, "quantize", f"its fp32 parent failed ({parent.stage})")
                        result = build_quantized(v, parent, dataset, cache, self.progress, reduce_range=reduce_range)
                    built[v.variant_id] = result
                    self.store.upsert_variant(self.run_id, v, "ok", None, {**result.details, "cached": result.cached})
                except VariantError as exc:
                    built[v.variant_id] = exc
                    self.store.upsert_variant(self.run_id, v, "failed", str(exc), {})
                    self.progress.log(f"[failed] {exc}")
                task.advance()
        return built

    def _jobs(self, variants, built) -> list[tuple[Variant, str, BuiltVariant | VariantError]]:
        """Every (variant, runtime) whose artifact format the runtime executes (failed builds included)."""
        from harness.runtimes import RUNTIMES

        jobs = []
        for v in variants:
            for runtime in self.spec.runtimes:
                result = built[v.variant_id]
                fmt = RUNTIMES.get(runtime).artifact_format
                if isinstance(result, VariantError) or fmt in result.files:
                    jobs.append((v, runtime, result))
                elif fmt == "tensorrt-engine":  # built here, on the device, from the variant's ONNX
                    source, why_not = engine_source(result.files, v.quant.recipe if v.quant else None)
                    if source is not None:
                        jobs.append((v, runtime, result))
                    elif not v.name.count("#"):  # population members are never timed
                        self.notes.append(f"{v.name} is not run on {runtime}: {why_not}.")
        return jobs

    def _engine(self, v: Variant, result: BuiltVariant):
        """Build (or reuse) the TensorRT engine of ``v`` for this device: (engine path, ArtifactInfo, EngineInfo)."""
        from harness.export.inspect import file_sha256, inspect_onnx
        from harness.export.tensorrt import EngineSpec, build_engine, engine_info, engine_spec_for_target
        from harness.runtimes.tensorrt import cuda_device_name
        from harness.targets import load_target

        source_format, _ = engine_source(result.files, v.quant.recipe if v.quant else None)
        source = result.files[source_format]
        batches, sparse, options = self.spec.measure.batch_sizes, v.prune_method == "2:4", self.spec.tensorrt
        if self.spec.target:
            engine_spec = engine_spec_for_target(
                load_target(self.spec.target), batches, sparse_weights=sparse, use_dla=options.dla_core is not None,
                dla_core=options.dla_core or 0, workspace_mb=options.workspace_mb,
                builder_optimization_level=options.builder_optimization_level,
            )
        else:
            engine_spec = EngineSpec(tuple(batches), sparse_weights=sparse, workspace_mb=options.workspace_mb or 1024,
                                     builder_optimization_level=options.builder_optimization_level)
        self.progress.log(f"TensorRT engine for {v.name} (from {source.name})")
        build = build_engine(source, engine_spec, self.paths.cache_dir / "engines", device_name=cuda_device_name())
        info = engine_info(build, source_format)
        artifact = replace(inspect_onnx(source), path=str(build.path), format="tensorrt-engine", file_mb=info.engine_mb,
                           sha256=file_sha256(build.path))  # the file timed and scored is the engine
        return build.path, artifact, info

    def _target_facts(self) -> dict:
        """From the named target profile: its default power mode (checked against nvpmodel) and unified memory."""
        from harness.targets import load_target

        if not self.spec.target:
            return {}
        profile = load_target(self.spec.target)
        return {"expected_power_mode": profile.power.default_mode if profile.power else None,
                "unified_memory": profile.memory.unified}

    def _evaluate_and_measure(self, variants, built, dataset) -> None:
        jobs = self._jobs(variants, built)
        self.store.update_run(self.run_id, n_expected=len(jobs) * len(self.spec.measure.batch_sizes))
        jobs = [(v, r, res) for v, r, res in jobs if (v.variant_id, r) not in self.done]
        with self.progress.task("evaluating and measuring", total=len(jobs)) as task:
            for v, runtime, result in jobs:
                task.update(f"{v.name} on {runtime}")
                self._run_job(v, runtime, result, dataset)
                task.advance()

    def _run_job(self, v: Variant, runtime: str, result: BuiltVariant | VariantError, dataset) -> bool:
        """Evaluate and measure one (variant, runtime) and store it; a failure is stored as failed points."""
        batches = self.spec.measure.batch_sizes
        if isinstance(result, VariantError):
            self._record(v, runtime, _failed_points(v, runtime, batches, str(result)))
            return False
        with tempfile.TemporaryDirectory(prefix="harness-inputs-") as tmp:
            inputs = Path(tmp) / "eval_inputs.npy"
            np.save(inputs, dataset.evaluation.x[: max(batches)])
            try:
                self._record(v, runtime, *self._one(v, runtime, result, dataset, inputs))
                return True
            except HarnessError as exc:
                msg = str(exc) if isinstance(exc, VariantError) else f"variant {v.name} on {runtime}: {exc}"
                self._record(v, runtime, _failed_points(v, runtime, batches, msg))
                self.progress.log(f"[failed] {msg}")
                return False

    def _one(self, v: Variant, runtime: str, result: BuiltVariant, dataset, inputs: Path) -> list[tuple]:
        from harness.export.inspect import inspect_onnx, inspect_program
        from harness.runtimes import RUNTIMES

        runner_cls = RUNTIMES.get(runtime)
        engine = None
        if runner_cls.artifact_format == "tensorrt-engine" and "tensorrt-engine" not in result.files:
            artifact_path, artifact, engine = self._engine(v, result)
        else:
            artifact_path = result.files[runner_cls.artifact_format]
            artifact = (inspect_onnx if runner_cls.artifact_format == "onnx" else inspect_program)(artifact_path)
        ev = dataset.evaluation
        logits = evaluate(runner_cls, artifact_path, ev.x, self.threads)
        groups, levels = evaluation_groups(dataset, self.spec.groups.intersections)
        accuracy = accuracy_stats(ev.y, logits.argmax(1), dataset.class_names, groups, levels,
                                  min_group_support=self.spec.groups.min_support)
        if logits.shape[1] > 5:
            accuracy = replace(accuracy, top5=top_k_accuracy(logits, ev.y, 5))
        if v.name == "dense":
            self.dense_accuracy[runtime] = accuracy
        if runtime in self.dense_accuracy:
            accuracy = against_baseline(accuracy, self.dense_accuracy[runtime])
        evaluation = {"accuracy": accuracy, "sample_index": ev.index, "labels": ev.y, "logits": logits}
        self.pops.logits[(v.variant_id, runtime)] = logits
        if dataset.n_classes == 2 and len(dataset.calibration):  # threshold calibration (Iofinova et al.)
            self.pops.calib_logits[(v.variant_id, runtime)] = evaluate(
                runner_cls, artifact_path, dataset.calibration.x, self.threads
            )

        ms = self.spec.measure
        reference = inputs.with_name("reference_logits.npy")  # the timed path's outputs must match these
        np.save(reference, logits[: max(ms.batch_sizes)])
        request = MeasureRequest(
            runtime=runtime,
            artifact=str(artifact_path),
            inputs_npy=str(inputs),
            batch_sizes=ms.batch_sizes,
            rule=to_dict(self.rule),
            threads=self.threads,
            profile=ms.profile,
            scenarios=[ms.scenario_for(b) for b in ms.batch_sizes],
            expected_sha256=artifact.sha256,
            reference_logits_npy=str(reference),
            bootstrap_resamples=ms.bootstrap_resamples,
            bootstrap_seed=ms.bootstrap_seed,
            energy_meter=ms.energy_meter,
            external_meter_command=ms.external_meter_command,
            idle_baseline_s=ms.idle_baseline_s if ms.idle_baseline_s is not None else IDLE_BASELINE_S[ms.profile],
            **self._target_facts(),
            lock_clocks=ms.lock_clocks,
            lock_gpu_clock_mhz=ms.lock_gpu_clock_mhz,
        )
        measured = measure(request, ms.isolation)
        memory = MemoryStats(artifact_mb=artifact.file_mb, **measured["memory"])
        out = []
        for b in measured["batches"]:
            latency = LatencyStats(**b["latency"])
            point = OperatingPoint(
                point_id=_point_id(v, runtime, latency.batch_size),
                variant_id=v.variant_id,
                variant_name=v.name,
                runtime=runtime,
                batch_size=latency.batch_size,
                prune_method=v.prune_method,
                prune_amount=v.prune_amount,
                precision=v.precision,
                status="ok",
                artifact=artifact,
                accuracy=accuracy,
                latency=latency,
                memory=memory,
                energy=EnergyStats(**b["energy"]),
                engine=engine,
                device_state=DeviceState(**b["device_state"]),
                gpu_timing=GpuTiming(**b["gpu_timing"]) if b.get("gpu_timing") else None,
                recipe=describe_recipe(v),
            )
            out.append((point, b["warmup_ms"], b["samples_ms"]))
        return out, evaluation

    def _record(self, v: Variant, runtime: str, items: list, evaluation: dict | None = None) -> None:
        """Store one (variant, runtime): evaluation and points in a single transaction."""
        rows = [item if isinstance(item, tuple) else (item, None, None) for item in items]
        self.store.add_result(self.run_id, v.variant_id, runtime, rows, evaluation)
        self.points.extend(point for point, _, _ in rows)

    # ------------------------------------------------------------------ selection and report

    def _finish(self, variants: list[Variant]) -> RunReport:
        from harness.report.files import write_card_files

        spec = self.spec
        dense_acc = {p.runtime: p.accuracy for p in self.points if p.variant_id == variants[0].variant_id and p.accuracy}
        self.points = [  # deltas from the stored accuracies: on a fleet the dense job may have finished last
            replace(p, accuracy=against_baseline(p.accuracy, dense_acc[p.runtime]))
            if p.accuracy is not None and p.runtime in dense_acc else p
            for p in self.points
        ]
        self.points = attach_bias(
            self.points, self.pops, variants[0].variant_id, self.dataset, cev_variant=spec.bias.cev_variant,
            n_boot=spec.bias.n_boot, intersections=spec.groups.intersections,
        )
        objectives = [parse_objective(o) for o in spec.selection.objectives]
        front: list[str] = []
        for b in spec.measure.batch_sizes:
            front += pareto_front([p for p in self.points if p.batch_size == b], objectives).front
        self.points = [replace(p, on_pareto_front=p.point_id in front) for p in self.points]
        selection = select_for_spec(self.points, spec.selection)  # all three policies and the knee
        chosen = next((p for p in self.points if p.point_id == selection.point_id), None)
        gallery = write_audit(variants, spec.runtimes, self.pops, self.dataset, self.run_dir, chosen)
        if spec.population == 1:
            self.notes.append(
                "population = 1: CIE is plain disagreement between one dense and one compressed model; "
                "use population = 5 or more for the modal CIE of Hooker et al."
            )
        n_failed = sum(p.status != "ok" for p in self.points)
        energy_reasons = {p.energy.unavailable_reason for p in self.points if p.energy and p.energy.unavailable_reason}
        for reason in sorted(energy_reasons):
            self.notes.append(f"energy not measured: {reason}")
        if spec.measure.profile == "quick":
            self.notes.append(
                "latency uses the quick measurement profile "
                f"(warm-up {self.rule.warmup_runs} runs and {self.rule.warmup_s} s, then at least "
                f"{self.rule.min_samples} samples and {self.rule.min_duration_s} s): fine for ranking, "
                "noisier than the standard profile."
            )
        report = RunReport(
            run_id=self.run_id,
            experiment_name=spec.name,
            started_at=self.started_at,
            finished_at=_now(),
            status="ok" if n_failed == 0 else "partial",
            dataset=self.dataset_info or self.dataset.info(),
            model_name=spec.model.name,
            baseline_variant_id=variants[0].variant_id,
            points=self.points,
            objectives=[str(o) for o in objectives],
            selection=selection,
            environment=self.environment,
            run_dir=str(self.run_dir),
            card_path=str(self.run_dir / "card.md"),
            plot_path=str(self.run_dir / "front.png"),
            cie_gallery_path=str(gallery) if gallery else None,
            population=spec.population,
            target=spec.target,
            store=self.paths.store,
            n_failed=n_failed,
            notes=self.notes,
        )
        write_card_files(report, self.run_dir, latency_samples=self.store.latency_samples(self.run_id))
        (self.run_dir / "report.json").write_text(json.dumps(to_dict(report), indent=2))
        self.store.rewrite_points(self.run_id, self.points)
        self.store.update_run(
            self.run_id, status=report.status, finished_at=report.finished_at, n_failed=n_failed,
            selection_json=selection, card_path=report.card_path, plot_path=report.plot_path,
            report_json=report,
        )
        return report


def resumable_run(store: str, run_id: str | None) -> tuple[str, ExperimentSpec]:
    """The run to resume (``None``: the latest unfinished one) and the experiment it was started with."""
    from harness.errors import ConfigError

    st = open_store(store)
    try:
        if run_id is None:
            rows = st.incomplete_runs()
            if not rows:
                raise ConfigError(f"nothing to resume: every run in {store} finished")
            row = rows[-1]
        else:
            row = st.run_row(run_id)
            if row is None:
                raise ConfigError(f"no run {run_id!r} in {store}")
            if row["status"] == "ok":
                raise ConfigError(f"run {run_id} finished with every operating point ok; nothing to resume")
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
    sweep = _Sweep(spec, paths, progress or ProgressReporter(), resume)
    try:
        return sweep.run()
    finally:
        sweep.store.close()
