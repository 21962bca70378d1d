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
    run: Annotated[str, typer.Argument(help="Run id.")],
    point: Annotated[Optional[str], typer.Option("--point", help="Describe this point instead of the chosen one.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md | json")] = "md",
    store: StoreOpt = None,
) -> None:
    """Re-render a run's model card from the store (Markdown or JSON) on stdout."""
    from dataclasses import replace

    from harness.errors import ConfigError
    from harness.records import to_dict
    from harness.report.card import render_model_card
    from harness.store.views import load_report

    st = _open(store)
    try:
        report = load_report(st, run)
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
    if fmt == "json":
        typer.echo(json.dumps(to_dict(report), indent=2))
    elif fmt == "md":
        typer.echo(render_model_card(report), nl=False)
    else:
        raise typer.BadParameter("choose md or json", param_hint="--format")
