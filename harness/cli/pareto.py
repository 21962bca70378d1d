"""``harness pareto`` and ``harness card``: decisions and cards from the store, on any machine."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from harness.cli.results import StoreOpt, _open, _table


def pareto_command(
    runs: Annotated[
        list[str] | None,
        typer.Argument(help="Run ids (several: one front across them, e.g. across targets). Default: the latest run."),
    ] = None,
    objective: Annotated[
        list[str],
        typer.Option("--objective", "-o",
                     help="metric[:min|max], repeatable; the first is the primary (default: the run's own)."),
    ] = [],  # noqa: B006
    constraint: Annotated[
        list[str], typer.Option("--constraint", "-c", help="METRIC<=N or METRIC>=N, repeatable, e.g. p99_ms<=5, "
                                "max_class_drop<=0.03 (default: the run's own; 'none' for no constraint).")
    ] = [],  # noqa: B006
    policy: Annotated[
        list[str],
        typer.Option("--policy", "-p", help="constraint-first | weighted-utility | accuracy-only, repeatable (default: all)."),
    ] = [],  # noqa: B006
    weight: Annotated[
        list[str],
        typer.Option("--weight", "-w",
                     help="METRIC=W for the weighted-utility policy, repeatable (default: the run's own, else equal)."),
    ] = [],  # noqa: B006
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", "-b", help="Points at this batch size (default: the run's selection batch).")] = None,
    store: StoreOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """The Pareto front of stored points over any metrics, each policy's pick, the knee, techniques and targets."""
    from harness.cli._output import plain, stdout
    from harness.selection import parse_weight
    from harness.store.views import front_table, latest_run, run_selection

    st = _open(store)
    try:
        run_ids = list(runs or [latest_run(st)])
        own = run_selection(st, run_ids[0])
        result = front_table(
            st, run_ids, list(objective) or list(own.objectives), batch_size or own.batch_size,
            constraints=None if not constraint else [c for c in constraint if c.strip().lower() != "none"],
            weights=dict(parse_weight(w) for w in weight) or None,
            policies=list(policy) or None,
        )
    finally:
        st.close()
    if json_output:
        typer.echo(json.dumps(result, indent=2))
        return
    metrics = [o.split(":")[0] for o in result["objectives"]]
    several = len(result["targets"]) > 1
    columns = ["point", *(["target"] if several else []), "technique", "on_front", *metrics, "excluded"]
    title = f"Pareto front over {', '.join(result['objectives'])} at batch {result['batch_size']}"
    stdout.print(_table(title, result["points"], columns))

    def say(text: str) -> None:  # reasons quote user strings: no rich markup, emoji codes or control characters
        stdout.print(plain(text))

    say(f"constraints: {', '.join(result['constraints']) or 'none'}")
    for c in result["policies"]:
        binding = f" (binding: {', '.join(c['binding_constraints'])})" if c["binding_constraints"] else ""
        say(f"{c['policy']}: {c['point_id'] or 'none'}{binding}. {c['reason']}")
    if result["fairness_changed_choice"]:
        say("fairness changed the choice: constraint-first and accuracy-only pick different points")
    say(f"knee: {result['knee']['point'] or 'none'}. {result['knee']['reason']}")
    for t in result["techniques"]:
        where = f" on {t['target']}" if several else ""
        say(f"techniques{where}: {t['a']} vs {t['b']}: {t['verdict']}")
    for name, front in result["targets"].items() if several else ():
        say(f"front on {name}: {', '.join(front['front']) or 'empty'}")


def card_command(
    run: Annotated[str | None, typer.Argument(help="Run id (default: the latest finished run in the store).")] = None,
    point: Annotated[str | None, typer.Option("--point", help="Describe this point instead of the chosen one.")] = None,
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
