"""``harness pareto`` and ``harness card``: decisions and cards from the store, on any machine."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from harness.cli.results import StoreOpt, _open, _table


def pareto_command(
    runs: Annotated[list[str], typer.Argument(help="Run ids (several: one front across them, e.g. across targets).")],
    objective: Annotated[
        list[str], typer.Option("--objective", "-o", help="metric:min|max, repeatable (default: the run's own objectives).")
    ] = [],  # noqa: B006
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Only points at this batch size.")] = 1,
    store: StoreOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """The Pareto front of stored operating points over any stored metrics (e.g. -o p99_ms:min -o cev:min)."""
    from harness.cli._output import stdout
    from harness.store.views import front_table, require_run

    st = _open(store)
    try:
        objectives = list(objective) or json.loads(require_run(st, runs[0])["experiment_json"])["selection"]["objectives"]
        result = front_table(st, list(runs), objectives, batch_size)
    finally:
        st.close()
    if json_output:
        typer.echo(json.dumps(result, indent=2))
        return
    columns = ["point", "on_front", *[o.split(":")[0] for o in result["objectives"]], "excluded"]
    stdout.print(_table(f"Pareto front over {', '.join(result['objectives'])}", result["points"], columns))


def card_command(
    run: Annotated[Optional[str], typer.Argument(help="Run id (default: the latest finished run in the store).")] = None,
    point: Annotated[Optional[str], typer.Option("--point", help="Describe this point instead of the chosen one.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md | html | json")] = "md",
    store: StoreOpt = None,
) -> None:
    """Re-render a run's model card from the store (Markdown, self-contained HTML or JSON) on stdout."""
    from dataclasses import replace

    from harness.errors import ConfigError
    from harness.report.card import CARD_FORMATS
    from harness.report.files import render_stored_card
    from harness.store.views import latest_finished_run, load_report

    if fmt not in CARD_FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(CARD_FORMATS)}", param_hint="--format")
    st = _open(store)
    try:
        run = run or latest_finished_run(st)
        report = load_report(st, run)
        samples = st.latency_samples(run)
    finally:
        st.close()
    if point is not None:
        if point not in {p.point_id for p in report.points}:
            raise ConfigError(f"run {run} has no point {point!r}")
        report = replace(report, selection=replace(
            report.selection, point_id=point, reason=f"{point}, chosen by the reader with --point "
            f"(the run's own choice was {report.selection.point_id}: {report.selection.reason})",
            fairness_changed_choice=False,
        ))
    typer.echo(render_stored_card(report, fmt, latency_samples=samples), nl=False)
