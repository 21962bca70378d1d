"""``harness bench``: time one exported file in the sweep's measuring process (no dataset, no accuracy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

EXAMPLES = (
    "Examples:\n\n"
    "harness bench model.onnx  (the first runtime here that runs ONNX, batch 1)\n\n"
    "harness bench model.onnx -r onnxruntime -b 1 -b 32 --profile quick --json > bench.json\n\n"
    "harness bench model.pt2 --scenario single-stream --scenario offline --export-times times.json\n\n"
    "harness bench model.engine -r tensorrt --shape 8x3x224x224 --target rtx-4090\n\n"
    "harness bench model.onnx --inputs images.npy --store results/harness.db"
)


def bench_command(
    model: Annotated[Path, typer.Argument(metavar="MODEL", show_default=False,
                                          help="The file to time: .onnx, .pt2, or a TensorRT engine (.engine, .plan, .trt).")],
    runtime: Annotated[
        list[str] | None,
        typer.Option("--runtime", "-r", help="Runtime to time it on (repeatable). Default: the first registered "
                     "runtime (of the target's, with --target) that runs the file's format and is available here."),
    ] = None,
    batch_size: Annotated[
        list[int] | None,
        typer.Option("--batch-size", "-b", min=1, help="Batch size (repeatable). Default: --shape's batch, else the "
                     "model's static batch, else 1."),
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", help="MLPerf scenario instead of batch sizes (repeatable): single-stream, "
                     "multi-stream or offline."),
    ] = None,
    shape: Annotated[
        str | None,
        typer.Option("--shape", help="The full input shape, batch first (1x3x224x224): needed for dynamic axes "
                     "other than the batch, and for a TensorRT engine."),
    ] = None,
    inputs: Annotated[
        Path | None,
        typer.Option("--inputs", help="An .npy file of input rows (rows first) instead of seeded synthetic ones."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic (standard normal) inputs.")] = 0,
    profile: Annotated[
        str, typer.Option("--profile", help="Stopping-rule profile: standard or quick (shorter warm-up and sampling).")
    ] = "standard",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Intra-op threads (default: physical cores).")] = None,
    energy_meter: Annotated[
        str, typer.Option("--energy-meter", help="auto (the best meter here) or a meter name (rapl, nvml, jetson ...).")
    ] = "auto",
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="Device profile (`harness targets list`): runtimes it lacks are refused."),
    ] = None,
    inline: Annotated[bool, typer.Option("--inline", help="Measure in this process instead of a fresh one.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON document on stdout (the table goes to stderr).")
    ] = False,
    export_times: Annotated[
        Path | None,
        typer.Option("--export-times", help="Write every warm-up and timed query's latency to this JSON file "
                     "(like trtexec --exportTimes)."),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Record the measurement as a run (one point per runtime and batch size, no "
                     "accuracy) in this results store: a path (SQLite) or a SQLAlchemy URL."),
    ] = None,
) -> None:
    """Time one exported file on synthetic (or given) inputs: the same scenarios, stopping rule,
    percentiles, memory, energy and device-state readings as a sweep's measuring process."""
    from pydantic import ValidationError

    from harness.bench import BenchSpec, bench, parse_shape
    from harness.cli._output import plain, stderr, stdout
    from harness.errors import ConfigError
    from harness.records import to_dict
    from harness.validation import format_validation_error

    measure: dict = {"profile": profile, "energy_meter": energy_meter}
    if batch_size and scenario:
        raise typer.BadParameter("give --batch-size or --scenario, not both (scenarios set the batch sizes)",
                                 param_hint="--scenario")
    if batch_size:
        measure["batch_sizes"] = batch_size
    if scenario:
        measure["scenarios"] = scenario
    if threads is not None:
        measure["threads"] = threads
    if inline:
        measure["isolation"] = "inline"
    raw = {"model": model, "runtimes": runtime or [], "shape": parse_shape(shape) if shape else None,
           "inputs": inputs, "seed": seed, "measure": measure, "target": target, "export_times": export_times,
           "store": store}
    try:
        spec = BenchSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "harness bench")) from None
    result = bench(spec)
    console = stderr if json_output else stdout
    console.print(bench_table(result))
    for line in unavailable_notes(result):
        console.print(plain(line))
    for label, value in (("export times", result.export_times_path), ("store", result.store), ("run", result.run_id)):
        if value:
            console.print(plain(f"{label}: {value}"))
    if json_output:
        typer.echo(json.dumps(to_dict(result), indent=2))


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "n/a" if x is None else format(x, fmt)


def bench_table(result):
    """One row per (runtime, batch size): percentiles, throughput, memory, energy, stability."""
    from rich.table import Table

    from harness.cli._output import plain

    shape = "x".join(map(str, result.input.sample_shape))
    table = Table(title=plain(f"bench {result.model_path} ({result.artifact_format}, N x {shape} "
                              f"{result.input.dtype}, {result.input.source} inputs)"), title_justify="left")
    for col in ["runtime", "batch", "scenario", "queries", "p50 ms", "p90 ms", "p99 ms", "samples/s", "peak RSS MB",
                "mJ/inference", "stability"]:
        table.add_column(col, justify="left" if col in ("runtime", "scenario", "stability") else "right")
    for run in result.runs:
        for b in run.batches:
            lat, en = b.latency, b.energy
            table.add_row(
                plain(run.runtime), str(lat.batch_size), plain(lat.scenario or ""), str(lat.n_samples),
                _num(lat.p50_ms), _num(lat.p90_ms), _num(lat.p99_ms), _num(lat.throughput_sps, ".1f"),
                _num(run.memory.peak_rss_mb, ".0f"), _num(en.energy_per_inference_mj),
                plain(lat.stability or "n/a"),
            )
    return table


def unavailable_notes(result) -> list[str]:
    """One line per distinct reason a figure in the table is n/a (or a loop was unstable)."""
    notes: dict[str, None] = {}
    for run in result.runs:
        if run.memory.peak_rss_mb is None:
            notes[f"peak RSS ({run.runtime}): n/a ({run.memory.peak_rss_unavailable_reason})"] = None
        for b in run.batches:
            lat, en = b.latency, b.energy
            where = f"{run.runtime}/bs{lat.batch_size}"
            for label, reason in (("p90", lat.p90_unavailable_reason), ("p99", lat.p99_unavailable_reason),
                                  ("energy", en.unavailable_reason)):
                if reason:
                    notes[f"{label}: n/a ({reason})"] = None
            if lat.stability == "unstable":
                notes[f"{where}: unstable ({lat.unstable_reason})"] = None
            for warning in b.device_state.warnings:
                notes[f"{where} device state: {warning}"] = None
    notes[f"accuracy: n/a ({result.accuracy_unavailable_reason})"] = None
    return list(notes)
