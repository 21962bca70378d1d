"""``harness bench``: time one exported file (``.onnx``, ``.pt2`` or a TensorRT engine) on the runtimes that
can run it, without a dataset, a sweep or an accuracy pass.

The input shape is read from the file (ONNX graph input, ``torch.export`` placeholder; a TensorRT engine's
is given with ``shape``). The batch axis is the first one: a dynamic batch axis is set per batch size,
any other dynamic axis comes from ``shape``. Inputs are seeded standard-normal values of the model's input
dtype, or the rows of an ``.npy`` file.

Timing is the sweep's own measuring process: :func:`harness.stages.measure.measure_request` builds the
same :class:`~harness.measure.worker.MeasureRequest` (scenarios, stopping rule, percentiles, memory,
energy meter, device state), run fresh per runtime (or inline) and read back as a
:class:`~harness.stages.measure.MeasureResult`. No reference outputs are given, so each batch records
its output check as unavailable with the reason.

``export_times`` writes every warm-up and timed sample (like trtexec's ``--exportTimes``); ``store``
records the measurement as a run with one operating point per (runtime, batch size) and no accuracy.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from harness.compress.variants import Variant
from harness.config import MeasureSpec, Spec
from harness.errors import ConfigError, DeviceUnavailable, InputError, ParseError, first_line
from harness.records import ArtifactInfo, EnvironmentInfo, MemoryStats, OperatingPoint, to_dict
from harness.stages.measure import BatchMeasurement

#: file endings of a serialized TensorRT engine (trtexec ``--saveEngine`` names are free; these are the usual)
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
#: why a benchmarked point has no accuracy
NO_ACCURACY_REASON = ("harness bench times a file on synthetic or given inputs without labels; "
                      "`harness run --model FILE` measures accuracy")
#: why a stored bench point has no pruning record
UNKNOWN_RECIPE_REASON = "a file given to harness bench: how it was pruned or quantized is not recorded in it"


class BenchSpec(Spec):
    """What ``harness bench`` times. ``measure.batch_sizes`` / ``measure.scenarios`` left unset: the batch of
    ``shape``, else the model's static batch, else 1."""

    model: Path
    runtimes: list[str] = Field(default_factory=list)  # empty: the first registered runtime that can run it here
    shape: list[Annotated[int, Field(gt=0)]] | None = None  # the full input shape, batch axis first
    inputs: Path | None = None  # an .npy file of input rows instead of synthetic ones
    seed: int = 0  # of the synthetic inputs
    measure: MeasureSpec = Field(default_factory=MeasureSpec)
    target: str | None = None  # a device profile: its runtimes are the choices
    export_times: Path | None = None  # every warm-up and timed sample, as JSON
    store: str | None = None  # record the measurement as a run (a path: SQLite; else a SQLAlchemy URL)


@dataclass(frozen=True)
class ModelInput:
    """The model's input as its file declares it: an int per static axis, the axis name (or ``?``) per dynamic one."""

    name: str | None
    dims: list[int | str]
    dtype: str
    ranges: dict[str, list[int | None]] = field(default_factory=dict)  # dynamic axis name -> [min, max] the file allows


@dataclass(frozen=True)
class BenchInput:
    """What was fed: per-sample shape (batch axis excluded), dtype, and where the values came from."""

    name: str | None
    model_dims: list[int | str] | None  # as the file declares them; None: not read from the file (an engine)
    sample_shape: list[int]
    dtype: str
    source: str  # "synthetic" | "file"
    inputs_path: str | None
    seed: int | None  # of the synthetic values
    n_rows: int  # rows generated or read; a larger batch tiles them


@dataclass(frozen=True)
class RuntimeBench:
    """One runtime's measuring process: every batch size, and the memory stack."""

    runtime: str
    batches: list[BatchMeasurement]
    memory: MemoryStats


@dataclass(frozen=True)
class BenchResult:
    """One file timed on each runtime (``runs``), with what was fed and how it was measured. No accuracy
    (``accuracy_unavailable_reason``); the stored run's id and points when ``store`` was given."""

    model_path: str
    artifact_format: str
    artifact_sha256: str
    artifact_mb: float
    artifact: ArtifactInfo | None  # read back by the format's inspector
    artifact_unavailable_reason: str | None
    input: BenchInput
    runs: list[RuntimeBench]
    environment: EnvironmentInfo
    started_at: str
    finished_at: str
    target: str | None
    measure: dict[str, Any]  # the resolved MeasureSpec
    stopping_rule: dict[str, Any]
    threads: int
    accuracy_unavailable_reason: str = NO_ACCURACY_REASON
    export_times_path: str | None = None
    store: str | None = None
    run_id: str | None = None  # of the stored run
    point_ids: list[str] = field(default_factory=list)  # of the stored operating points


# ---------------------------------------------------------------------------- the file


def parse_shape(text: str) -> list[int]:
    """``"1x3x224x224"`` -> ``[1, 3, 224, 224]``; anything else is a :class:`ParseError` naming ``--shape``."""
    parts = text.lower().replace("×", "x").split("x")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ParseError(f"--shape {text!r}: give positive axis sizes separated by x, batch first, e.g. 1x3x224x224")
    return [int(p) for p in parts]


def artifact_format(path: Path) -> str:
    """The artifact format of ``path``, from its name: a format's cache file ending (``.onnx``,
    ``.trt-qdq.onnx``, ``.pt2``) or a TensorRT engine's (:data:`ENGINE_SUFFIXES`)."""
    from harness.export.formats import FORMATS

    name = path.name.lower()
    if name.endswith(ENGINE_SUFFIXES):
        return "tensorrt-engine"
    endings = sorted(((("".join(Path(f.file_name).suffixes)), f.name) for f in FORMATS if f.file_name),
                     key=lambda e: -len(e[0]))
    for ending, fmt in endings:
        if name.endswith(ending):
            return fmt
    known = sorted({e for e, _ in endings} | set(ENGINE_SUFFIXES))
    raise InputError(f"{path}: not a file harness bench times (by its name); it takes {', '.join(known)} files")


def _runs_format(runner_format: str, fmt: str) -> bool:
    from harness.export.formats import FORMATS

    if runner_format == fmt:
        return True
    a, b = FORMATS.get(runner_format), FORMATS.get(fmt)
    return bool(a and b and a.onnx_family and b.onnx_family)


def onnx_model_input(path: Path) -> ModelInput:
    """The single graph input of an ONNX file (initializers excluded); an unreadable file is an InputError."""
    import onnx
    from onnx import helper

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the file's fault
        raise InputError(f"ONNX file {path} cannot be read (truncated or not ONNX): {first_line(exc)}") from None
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise InputError(f"ONNX file {path} has {len(inputs)} inputs; the runtimes feed one image batch")
    tensor = inputs[0].type.tensor_type
    dims: list[int | str] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
    except (KeyError, TypeError, ValueError):
        raise InputError(f"ONNX file {path}: input {inputs[0].name!r} has no numeric element type") from None
    return ModelInput(inputs[0].name, dims, dtype)


def program_model_input(path: Path) -> ModelInput:
    """The single user input of a ``torch.export`` program, from its placeholder's example value (symbolic
    axes by their symbol's name); the file is opened only through :func:`harness.export.pt2.load_program`."""
    import torch

    from harness.export.pt2 import load_program

    program = load_program(path)
    user_inputs = list(program.graph_signature.user_inputs)
    if len(user_inputs) != 1:
        raise InputError(f"exported program {path} takes {len(user_inputs)} inputs; the runtimes feed one image batch")
    node = next((n for n in program.graph.nodes if n.op == "placeholder" and n.name == user_inputs[0]), None)
    value = node.meta.get("val") if node is not None else None
    if not isinstance(value, torch.Tensor):
        raise InputError(f"exported program {path}: its input {user_inputs[0]!r} records no example tensor")
    dims: list[int | str] = [d if isinstance(d, int) else str(d) for d in value.shape]
    ranges: dict[str, list[int | None]] = {}
    for symbol, bounds in program.range_constraints.items():
        if str(symbol) in dims:
            ranges[str(symbol)] = [_bound(bounds.lower), _bound(bounds.upper)]
    return ModelInput(str(user_inputs[0]), dims, str(torch.empty((), dtype=value.dtype).numpy().dtype), ranges)


def _bound(value: Any) -> int | None:
    """A range bound as an int; None for an unbounded (infinite) one."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def model_input(path: Path, fmt: str) -> ModelInput | None:
    """The input the file declares, or None where the harness does not read it (a TensorRT engine)."""
    from harness.export.formats import FORMATS

    if FORMATS[fmt].onnx_family:
        return onnx_model_input(path)
    if fmt == "torch.export":
        return program_model_input(path)
    return None


def _example(dims: list[int | str]) -> str:
    return "x".join(str(d) if isinstance(d, int) else "N" if i == 0 else "?" for i, d in enumerate(dims))


def resolve_shape(path: Path, declared: ModelInput | None, shape: list[int] | None,
                  batch_sizes: list[int] | None) -> tuple[list[int], list[int]]:
    """``(per-sample shape, batch sizes)`` from the file's input, ``shape`` and the requested batch sizes.

    Axis 0 is the batch axis. A static one fixes the batch size; a dynamic one takes every requested batch
    size (none requested: ``shape``'s, else 1). Every other axis is the file's, or ``shape``'s where the
    file leaves it dynamic; a dynamic axis without ``shape`` is a ConfigError naming it.
    """
    if declared is None:
        if shape is None:
            raise ConfigError(f"{path}: the input shape of a TensorRT engine is not read from the file: "
                              "give it with --shape, e.g. --shape 1x3x224x224")
        if len(shape) < 2:
            raise ConfigError(f"--shape {_example(list(shape))}: give the batch axis and at least one more")
        return list(shape[1:]), batch_sizes or [shape[0]]
    dims = declared.dims
    what = f"{path} input {declared.name!r}" if declared.name else f"{path} input"
    if not dims:
        raise InputError(f"{what} is a scalar; the runtimes feed a batch (batch axis first)")
    if shape is not None and len(shape) != len(dims):
        raise ConfigError(f"--shape {'x'.join(map(str, shape))} has {len(shape)} axes; {what} has {len(dims)} "
                          f"({_example(dims)})")
    def allowed(axis: int, name: str, size: int) -> None:
        low, high = declared.ranges.get(name, [None, None])
        if (low is not None and size < low) or (high is not None and size > high):
            raise ConfigError(f"{what} takes axis {axis} ({name!r}) from {low} to {high}; {size} is outside that")

    sample: list[int] = []
    for axis, d in enumerate(dims[1:], start=1):
        if isinstance(d, int):
            if shape is not None and shape[axis] != d:
                raise ConfigError(f"--shape gives axis {axis} = {shape[axis]}; {what} fixes it to {d} ({_example(dims)})")
            sample.append(d)
        elif shape is None:
            raise ConfigError(f"{what} has dynamic axis {axis} ({d!r}): give the full input shape with --shape, "
                              f"e.g. --shape {_example(dims)} with sizes for the ?")
        else:
            allowed(axis, d, shape[axis])
            sample.append(shape[axis])
    batch = dims[0]
    if isinstance(batch, int):
        wanted = sorted(set(batch_sizes or [batch]) | ({shape[0]} if shape else set()))
        if wanted != [batch]:
            raise ConfigError(f"{what} has a static batch of {batch}; batch sizes {wanted} need a file exported "
                              "with a dynamic batch axis")
        return sample, [batch]
    sizes = batch_sizes or [shape[0] if shape else 1]
    for b in sizes:
        allowed(0, batch, b)
    return sample, sizes


def make_inputs(spec: BenchSpec, sample: list[int], dtype: str, rows: int) -> tuple[np.ndarray, str | None]:
    """The rows to feed: ``spec.inputs`` checked against the per-sample shape, else seeded standard normal."""
    if spec.inputs is None:
        rng = np.random.default_rng(spec.seed)
        kind = np.dtype(dtype).kind
        if kind == "f":
            values = rng.standard_normal((rows, *sample), dtype=np.float32).astype(dtype)
        elif kind in "iub":
            values = rng.integers(0, 2, size=(rows, *sample)).astype(dtype)
        else:
            raise InputError(f"{spec.model}: synthetic inputs of dtype {dtype} are not made; give --inputs FILE.npy")
        return values, None
    path = Path(spec.inputs)
    if not path.is_file():
        raise ConfigError(f"inputs file not found: {path}")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - not an .npy of plain numbers
        raise InputError(f"inputs {path} cannot be read as an .npy array: {first_line(exc)}") from None
    if x.ndim != len(sample) + 1 or list(x.shape[1:]) != sample or len(x) == 0:
        want = "x".join(map(str, ["N", *sample]))
        raise InputError(f"inputs {path} hold shape {'x'.join(map(str, x.shape))}; the model takes {want} (rows first)")
    if x.dtype != np.dtype(dtype):
        if not np.can_cast(x.dtype, dtype, casting="same_kind"):
            raise InputError(f"inputs {path} are {x.dtype}; the model takes {dtype}")
        x = x.astype(dtype)
    return np.ascontiguousarray(x), str(path)


# ---------------------------------------------------------------------------- runtimes


def choose_runtimes(spec: BenchSpec, fmt: str) -> list[str]:
    """The runtimes to time: those asked for (each checked against the format, the target and this host),
    else the first one (of the target's, or of the registry) that runs ``fmt`` and is available here."""
    from types import SimpleNamespace

    from harness.runtimes import RUNTIMES
    from harness.targets import check_target, load_target

    offered = load_target(spec.target).runtimes if spec.target else RUNTIMES.in_order()
    if not spec.runtimes:
        reasons: dict[str, str] = {}
        for r in offered:
            if not _runs_format(RUNTIMES.get(r).artifact_format, fmt):
                continue
            reason = RUNTIMES.get(r).unavailable_reason()
            if reason is None:
                return [r]
            reasons[r] = reason
        where = f"target {spec.target}" if spec.target else "the registry"
        why = "; ".join(f"{r}: {w}" for r, w in reasons.items()) or f"no runtime of {where} runs {fmt} files"
        raise DeviceUnavailable(f"no runtime can time {spec.model} ({fmt}) here: {why}")
    for r in spec.runtimes:
        RUNTIMES.check(r)
        runner_format = RUNTIMES.get(r).artifact_format
        if not _runs_format(runner_format, fmt):
            raise ConfigError(f"runtime {r!r} runs {runner_format} files, not {fmt} ({spec.model})",
                              hint="leave --runtime out to take the first runtime that runs it")
    if spec.target:
        check_target(SimpleNamespace(runtimes=spec.runtimes), spec.target)
    for r in spec.runtimes:
        reason = RUNTIMES.get(r).unavailable_reason()
        if reason is not None:
            raise DeviceUnavailable(f"runtime {r!r} cannot run here: {reason}")
    return list(dict.fromkeys(spec.runtimes))


def _check_meter(name: str) -> None:
    from harness.meters import METERS

    if name != "auto":
        METERS.check(name)


# ---------------------------------------------------------------------------- bench


def bench(spec: BenchSpec) -> BenchResult:
    """Time ``spec.model`` on each chosen runtime in the sweep's measuring process; write the sample times
    and the store run when asked."""
    from harness.export.inspect import file_sha256
    from harness.measure.environment import capture_environment
    from harness.measure.latency import resolve_rule
    from harness.stages.context import default_threads, now
    from harness.stages.measure import measure_request, run_measurement

    path = Path(spec.model).expanduser()
    if not path.is_file():
        raise ConfigError(f"model file not found: {path}")
    fmt = artifact_format(path)
    runtimes = choose_runtimes(spec, fmt)
    _check_meter(spec.measure.energy_meter)
    declared = model_input(path, fmt)
    explicit = spec.measure.batch_sizes if "batch_sizes" in spec.measure.model_fields_set else None
    sample, batch_sizes = resolve_shape(path, declared, spec.shape, explicit)
    ms = MeasureSpec.model_validate({**spec.measure.model_dump(exclude_unset=True), "batch_sizes": batch_sizes})
    dtype = declared.dtype if declared else "float32"
    x, inputs_path = make_inputs(spec, sample, dtype, max(ms.batch_sizes))
    started = now()
    sha, artifact_mb = file_sha256(path), path.stat().st_size / 2**20
    info, info_reason = _inspect(path, fmt)
    if spec.store is not None:  # a store that cannot be opened fails before the timing, not after
        from harness.store import open_store

        open_store(spec.store).close()
    rule, threads = resolve_rule(ms), ms.threads or default_threads()
    runs = []
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        inputs_npy = Path(tmp) / "inputs.npy"
        np.save(inputs_npy, x)
        for runtime in runtimes:
            request = measure_request(ms, rule, threads, spec.target, runtime, path, sha, inputs_npy, None)
            measured = run_measurement(request, ms.isolation, artifact_mb)
            runs.append(RuntimeBench(runtime, measured.batches, measured.memory))
    result = BenchResult(
        model_path=str(path), artifact_format=fmt, artifact_sha256=sha, artifact_mb=artifact_mb, artifact=info,
        artifact_unavailable_reason=info_reason,
        input=BenchInput(
            name=declared.name if declared else None, model_dims=declared.dims if declared else None,
            sample_shape=sample, dtype=dtype, source="file" if inputs_path else "synthetic",
            inputs_path=inputs_path, seed=None if inputs_path else spec.seed, n_rows=len(x),
        ),
        runs=runs, environment=capture_environment(), started_at=started, finished_at=now(), target=spec.target,
        measure=ms.model_dump(mode="json"), stopping_rule=to_dict(rule), threads=threads,
    )
    if spec.export_times is not None:
        write_export_times(result, Path(spec.export_times))
        result = replace(result, export_times_path=str(spec.export_times))
    if spec.store is not None:
        run_id, point_ids = store_bench(result, spec.store)
        result = replace(result, store=spec.store, run_id=run_id, point_ids=point_ids)
    return result


def _inspect(path: Path, fmt: str) -> tuple[ArtifactInfo | None, str | None]:
    from harness.export.formats import FORMATS

    row = FORMATS[fmt]
    if row.inspector is None:
        return None, f"{fmt} files are not inspected (weights, sparsity and precision are read from ONNX and .pt2 files)"
    return row.inspect(path), None


# ---------------------------------------------------------------------------- sample times


def export_times(result: BenchResult) -> list[dict[str, Any]]:
    """Every warm-up and timed query, in order, one object each (like trtexec's ``--exportTimes``)."""
    rows: list[dict[str, Any]] = []
    for run in result.runs:
        for b in run.batches:
            for phase, samples in (("warmup", b.warmup_ms), ("timed", b.samples_ms)):
                rows += [{"runtime": run.runtime, "batch_size": b.latency.batch_size, "scenario": b.latency.scenario,
                          "phase": phase, "index": i, "latency_ms": ms} for i, ms in enumerate(samples)]
    return rows


def write_export_times(result: BenchResult, path: Path) -> None:
    from harness.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(export_times(result), indent=1) + "\n")


# ---------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class BenchVariant(Variant):
    """The variants row of a stored bench run (its points refer to it): a file whose recipe is not known
    (``recipe_known`` False), with the precision read from the file. The row's ``prune_amount`` column
    takes no NULL: it holds 0.0, and ``to_record`` (the row's spec) and the points hold None."""

    file_precision: str = "unknown"
    seed: int | None = None  # type: ignore[assignment]  # no baseline seed: the row's column holds NULL

    @property
    def precision(self) -> str:
        return self.file_precision

    def to_record(self) -> dict[str, Any]:
        return {"variant_id": self.variant_id, "name": self.name, "source": "harness bench",
                "precision": self.file_precision, "prune_method": None, "prune_amount": None, "prune_options": None,
                "quant": None, "parent_id": None, "seed": None, "unknown_reason": UNKNOWN_RECIPE_REASON}


def bench_points(result: BenchResult) -> list[tuple[OperatingPoint, list[float], list[float]]]:
    """One ok operating point per (runtime, batch size), without accuracy, with its raw samples."""
    name = Path(result.model_path).name
    variant_id = f"bench-{result.artifact_sha256[:12]}"
    precision = result.artifact.precision if result.artifact else "unknown"
    out = []
    for run in result.runs:
        for b in run.batches:
            point = OperatingPoint(
                point_id=f"{name}@{run.runtime}/bs{b.latency.batch_size}", variant_id=variant_id, variant_name=name,
                runtime=run.runtime, batch_size=b.latency.batch_size, prune_method="unknown", prune_amount=None,
                precision=precision, status="ok", artifact=result.artifact, accuracy=None, latency=b.latency,
                memory=run.memory, energy=b.energy, device_state=b.device_state, gpu_timing=b.gpu_timing,
                recipe=f"profiled by harness bench ({UNKNOWN_RECIPE_REASON}; {NO_ACCURACY_REASON})",
            )
            out.append((point, b.warmup_ms, b.samples_ms))
    return out


def bench_description(result: BenchResult) -> dict[str, Any]:
    """The stored run's ``experiment_json``: what was benchmarked and how (no experiment exists)."""
    return {
        "kind": "bench", "model": result.model_path, "artifact_format": result.artifact_format,
        "artifact_sha256": result.artifact_sha256, "runtimes": [r.runtime for r in result.runs],
        "input": to_dict(result.input), "measure": result.measure, "stopping_rule": result.stopping_rule,
        "threads": result.threads, "target": result.target,
        "dataset": None, "accuracy": None, "accuracy_unavailable_reason": NO_ACCURACY_REASON,
        "prune_method": None, "prune_amount": None, "recipe_unavailable_reason": UNKNOWN_RECIPE_REASON,
    }


def store_bench(result: BenchResult, store: str) -> tuple[str, list[str]]:
    """Record ``result`` as a finished run of its own; returns the run id and the point ids."""
    from harness.stages.context import new_run_id
    from harness.store import open_store

    points = bench_points(result)
    first = points[0][0]
    variant = BenchVariant(first.variant_id, first.variant_name, prune_method="unknown", prune_amount=0.0,
                           prune_options={}, quant=None, parent_id=None, recipe_known=False,
                           file_precision=first.precision)
    st = open_store(store)
    run_id = new_run_id()
    try:
        st.create_run(run_id, f"bench:{variant.name}", result.started_at, json.dumps(bench_description(result)),
                      result.environment, None)
        st.upsert_variant(run_id, variant, "ok", None, {"source": "harness bench", "model": result.model_path,
                                                         "prune_method": None, "prune_amount": None,
                                                         "unknown_reason": UNKNOWN_RECIPE_REASON})
        for run in result.runs:
            st.add_result(run_id, variant.variant_id, run.runtime, [p for p in points if p[0].runtime == run.runtime])
        st.update_run(run_id, status="ok", finished_at=result.finished_at, n_failed=0, n_expected=len(points))
    finally:
        st.close()
    return run_id, [p.point_id for p, _, _ in points]
