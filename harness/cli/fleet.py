"""``harness submit`` and ``harness worker``: one store, many devices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

StoreArg = Annotated[
    str, typer.Option("--store", help="The shared store: a postgresql:// URL for a fleet (a SQLite path works on one machine).")
]
ResultsOpt = Annotated[Path, typer.Option("--results-dir", help="Local cache and run folders.")]


def submit_command(
    experiment: Annotated[Path | None, typer.Argument(help="Experiment TOML (omitted: the embedded default).")] = None,
    target: Annotated[list[str], typer.Option("--target", "-t", help="Target to queue jobs for (repeatable).")] = [],  # noqa: B006
    store: StoreArg = "results/harness.db",
    results_dir: ResultsOpt = Path("results"),
) -> None:
    """Build every variant here, put the artifacts in the store and queue one run per target."""
    from harness.cli._output import RichProgress, plain, stdout
    from harness.experiment import load_experiment
    from harness.fleet import submit

    spec = load_experiment(experiment)
    with RichProgress() as progress:
        runs = submit(spec, list(target), store, results_dir, progress)
    for name, run_id in runs.items():
        stdout.print(plain(f"{name}: run {run_id} queued; start `harness worker --target {name} --store {store}` there"))


def worker_command(
    target: Annotated[str, typer.Option("--target", "-t", help="The target this machine is.")],
    store: StoreArg = "results/harness.db",
    results_dir: ResultsOpt = Path("results"),
    wait: Annotated[bool, typer.Option("--wait", help="Keep polling for new jobs instead of exiting when the queue is empty.")] = False,
    max_jobs: Annotated[int | None, typer.Option("--max-jobs", help="Stop after this many jobs.")] = None,
    lease_s: Annotated[float, typer.Option("--lease-s", help="A job whose worker is silent this long returns to the queue.")] = 900.0,
) -> None:
    """Claim this target's jobs, measure each locally, write the results; finalize runs that complete."""
    from harness.cli._output import RichProgress, plain, stdout
    from harness.errors import EXIT_SOME_POINTS_FAILED
    from harness.fleet import work

    with RichProgress() as progress:
        summary = work(store, target, results_dir, progress, lease_s=lease_s, max_jobs=max_jobs, wait=wait)
    stdout.print(plain(
        f"worker {summary.worker}: {summary.done} job(s) done, {summary.failed} failed; "
        f"finalized runs: {', '.join(summary.finalized) or 'none'}"
    ))
    if summary.failed:
        raise typer.Exit(EXIT_SOME_POINTS_FAILED)
