"""``harness run``: the whole job, from an experiment file (or the embedded default)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

EXAMPLES = (
    "Examples:\n\n"
    "harness run  (the embedded default: long-tailed digits)\n\n"
    "harness run docs/examples/experiment.toml --json > run.json\n\n"
    "harness run my.toml --runtime onnxruntime --quick --store /data/harness.db\n\n"
    "harness run --model mypkg.nets:classifier --checkpoint weights.pt\n\n"
    "harness run --model model.onnx  (int8 and runtime variants of an ONNX file)"
)


def model_overrides(model: str | None, checkpoint: Path | None) -> dict:
    """``--model`` replaces the file's model (its zoo ``channels`` dropped); ``--checkpoint`` adds weights."""
    out: dict = {}
    if model is not None:
        out.update(name=model, channels=None)
    if checkpoint is not None:
        out["checkpoint"] = str(checkpoint)
    return out


def flag_overrides(*, assignments: list[str], quick: bool = False, inline: bool = False, runtime: list[str] | None = None,
                   seed: int | None = None, target: str | None = None, model: str | None = None,
                   checkpoint: Path | None = None) -> dict:
    """``harness run``'s flags as the override mapping :func:`~harness.experiment.load_experiment` merges into
    the file before validation: the ``--set`` assignments first, the named flags over them."""
    from harness.experiment import deep_merge, set_overrides

    overrides: dict = set_overrides(assignments)
    if quick or inline:
        overrides = deep_merge(overrides, {"measure": {**({"profile": "quick"} if quick else {}),
                                                       **({"isolation": "inline"} if inline else {})}})
    if runtime:
        overrides["runtimes"] = runtime
    if seed is not None:
        overrides["seed"] = seed
    if target is not None:
        overrides["target"] = target
    if model is not None or checkpoint is not None:
        overrides = deep_merge(overrides, {"model": model_overrides(model, checkpoint)})
    return overrides


def run_command(
    experiment: Annotated[
        str | None,
        typer.Argument(
            metavar="[EXPERIMENT | RUN]",
            help="Experiment TOML file (omitted: the embedded default). With --resume: the run id to finish.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document for the run on stdout (progress stays on stderr).")
    ] = False,
    store: Annotated[
        str | None,
        typer.Option(help="Results database: a file path (SQLite) or a SQLAlchemy URL. Default: RESULTS_DIR/harness.db."),
    ] = None,
    results_dir: Annotated[
        Path, typer.Option("--results-dir", help="Where run folders, the cache and the default store live.")
    ] = Path("results"),
    quick: Annotated[
        bool, typer.Option("--quick", help="Quick latency profile (shorter warm-up and sampling) instead of the file's.")
    ] = False,
    runtime: Annotated[
        list[str] | None,
        typer.Option("--runtime", "-r", help="Runtime to measure on (repeatable); overrides `runtimes` in the file."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the experiment seed.")] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="Device profile (`harness targets list`); a runtime or precision "
                     "it lacks is refused before any work."),
    ] = None,
    inline: Annotated[
        bool, typer.Option("--inline", help="Measure in this process instead of a fresh one per operating point.")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m",
            help="The model instead of the experiment's: a zoo name, torchvision:NAME, timm:NAME, "
            "package.module:factory, or a .pt2 / .onnx file (a file: only quantization and runtime variants apply).",
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A state_dict loaded (weights only, no code run) into the model instead of training it."),
    ] = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", metavar="KEY=VALUE",
            help="Set any experiment key (repeatable; dotted for tables: train.epochs=3, measure.batch_sizes=[1,4]); "
            "VALUE is a TOML value, else a string. Checked like a value in the file; the flags above win over it.",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Finish an interrupted run: `harness run --resume [RUN]` (no RUN: the latest unfinished one in "
            "the store). Complete operating points are kept; only missing or failed ones are redone.",
        ),
    ] = False,
) -> None:
    """Run an experiment end to end: train or load the baseline, prune and quantize it, export
    every variant, score each artifact per class through its runtime, measure its latency,
    memory and energy, store every record, choose an operating point on the fairness-aware
    Pareto front and write a model card.
    """
    from harness.cli._output import RichProgress, plain, points_table, stderr, stdout
    from harness.errors import EXIT_SOME_POINTS_FAILED
    from harness.experiment import load_experiment
    from harness.pipeline import resumable_run, run_experiment
    from harness.report.summary import run_summary

    store = store or str(results_dir / "harness.db")
    overrides = flag_overrides(assignments=assignments or [], quick=quick, inline=inline, runtime=runtime,
                               seed=seed, target=target, model=model, checkpoint=checkpoint)
    if resume:
        if overrides:
            raise typer.BadParameter("a resumed run keeps its own experiment: drop "
                                     "--quick/--inline/--runtime/--seed/--target/--model/--checkpoint/--set",
                                     param_hint="--resume")
        run_id, spec = resumable_run(store, experiment)
    else:
        run_id, spec = None, load_experiment(Path(experiment) if experiment else None, overrides)

    with RichProgress() as progress:
        report = run_experiment(spec, results_dir=results_dir, store=store, progress=progress, resume=run_id)

    console = stderr if json_output else stdout
    console.print(points_table(report))
    console.print(plain(f"chosen: {report.selection.point_id or 'none'} ({report.selection.reason})"))
    for label, value in (("card", report.card_path), ("plot", report.plot_path), ("store", report.store)):
        console.print(plain(f"{label}: {value}"))
    if json_output:
        typer.echo(json.dumps(run_summary(report), indent=2))
    if report.n_failed:
        stderr.print(f"[yellow]{report.n_failed} operating point(s) failed; see the table and the store[/]")
        raise typer.Exit(EXIT_SOME_POINTS_FAILED)

