"""``harness results``: list, show, export and compare runs in the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

results_app = typer.Typer(
    no_args_is_help=True,
    help="Read runs back from the results store (list, show, export, compare).",
)

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Results database: a file path (SQLite) or a SQLAlchemy URL. Default: results/harness.db."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")]
RunArg = Annotated[str, typer.Argument(help="Run id (see `harness results list`).")]


def _open(store: str | None):
    from harness.store import open_store

    path = store or "results/harness.db"
    if "://" not in path and not Path(path).exists():
        from harness.errors import ConfigError

        raise ConfigError(f"no results store at {path}: run `harness run` first or pass --store")
    return open_store(path)


#: table columns that hold a catalog metric under another name
_COLUMN_METRICS = {"bias_amp_a_to_t_delta": "bias_amp_delta", "calibrated_bias_amp_a_to_t_delta": "bias_amp_delta",
                   "delta": "top1_delta"}


def _column_metric(column: str) -> str | None:
    """The catalog metric a column shows (``top1``, ``top1_a`` / ``top1_b`` in a comparison), if any."""
    from harness.metric_catalog import BY_NAME

    for name in (column, column.removesuffix("_a"), column.removesuffix("_b")):
        name = _COLUMN_METRICS.get(name, name)
        if name in BY_NAME:
            return name
    return None


def _cell(column: str, value, missing: str = "") -> str:
    from harness.cli._output import metric_cell

    if value is None:
        return missing
    if isinstance(value, bool):
        return str(value)
    name = _column_metric(column)
    if name is not None and isinstance(value, int | float):
        return metric_cell(name, value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(title: str, rows: list[dict], columns: list[str], *, missing: str = ""):
    """Rows as a table; metric columns in the catalog's format (the one the card and reasons use)."""
    from rich.table import Table

    from harness.cli._output import ID_COLUMNS, plain

    table = Table(title=plain(title), title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold" if c in ID_COLUMNS else "ellipsis")
    for row in rows:  # cells hold user text (run ids, names, labels): never rich markup
        table.add_row(*(plain(_cell(c, row.get(c), missing)) for c in columns))
    return table


@results_app.command("list")
def list_runs(store: StoreOpt = None, json_output: JsonOpt = False) -> None:
    """Every run in the store, oldest first, with its status and point counts."""
    from harness.cli._output import stdout
    from harness.store.views import run_listing

    st = _open(store)
    try:
        rows = run_listing(st)
    finally:
        st.close()
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
    else:
        stdout.print(_table("runs", rows, ["run_id", "experiment", "status", "n_points", "n_failed", "started_at", "chosen_point"]))


@results_app.command("show")
def show_run(run_id: RunArg, store: StoreOpt = None, json_output: JsonOpt = False) -> None:
    """One run: its status, the chosen point and why, and every operating point."""
    from harness.cli._output import plain, stdout
    from harness.store.views import require_run, run_tables

    st = _open(store)
    try:
        row = require_run(st, run_id)
        points = run_tables(st, run_id)["points"]
        records = st.operating_points(run_id)
    finally:
        st.close()
    selection = json.loads(row["selection_json"]) if row["selection_json"] else None
    if json_output:
        typer.echo(json.dumps({"run_id": run_id, "status": row["status"], "selection": selection, "points": points}, indent=2))
        return
    stdout.print(plain(f"run {run_id} ({row['experiment_name']}): {row['status']}, started {row['started_at']}"))
    if selection:
        stdout.print(plain(f"chosen: {selection.get('point_id')}: {selection.get('reason')}"))
    if row["card_path"]:
        stdout.print(plain(f"card: {row['card_path']}"))
    columns = ["point_id", "precision", "top1", "worst_class_recall", "p50_ms", "p99_ms", "peak_rss_mb",
               "cev", "cie_fraction", "ece", "n_classes_hurt", "on_pareto_front", "status"]
    # group columns only when some point has them (datasets with group attributes, binary targets)
    optional = ["worst_group_accuracy", "bias_amp_a_to_t_delta", "calibrated_top1", "calibrated_bias_amp_a_to_t_delta"]
    columns[-2:-2] = [c for c in optional if any(p.get(c) is not None for p in points)]
    stdout.print(_table("operating points", points, columns))
    for line in _bias_notes(points):
        stdout.print(plain(line))
    groups = _group_rows(records)
    if groups:
        stdout.print(_table(
            "accuracy change by group vs dense (95% bootstrap CI; 'no' = interval holds 0; small = below "
            "groups.min_support)", groups, ["point_id", "group", "support", "delta", "ci", "significant", "small"],
        ))


def _bias_notes(points: list[dict]) -> list[str]:
    """One line per distinct reason a bias metric is unavailable, so an empty column is explained."""
    lines = []
    for key, label in (("bias_amp_unavailable_reason", "bias amplification"),
                       ("threshold_calibration_unavailable_reason", "threshold calibration")):
        for reason in sorted({p[key] for p in points if p.get(key)}):
            lines.append(f"{label}: n/a ({reason})")
    cev = sorted({p["cev_variant"] for p in points if p.get("cev_variant")})
    if cev:
        lines.append(f"CEV definition: {', '.join(cev)}")
    return lines


def _group_rows(records) -> list[dict]:
    """Per-group accuracy deltas of the compressed points at the smallest batch size (accuracy does not
    depend on batch size), with their interval and significance mark."""
    ok = [p for p in records if p.status == "ok" and p.accuracy and p.bias and p.variant_name != "dense"]
    if not ok:
        return []
    batch = min(p.batch_size for p in ok)
    rows = []
    for p in ok:
        if p.batch_size != batch:
            continue
        small = set(p.accuracy.small_support_groups)
        for attr, levels in p.accuracy.per_group_delta.items():
            for level, delta in levels.items():
                key = f"{attr}={level}"
                ci = p.bias.per_group_delta_ci.get(key)
                rows.append({
                    "point_id": p.point_id, "group": key, "support": p.accuracy.per_group_support[attr][level],
                    "delta": delta, "ci": f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "n/a",
                    "significant": "yes" if p.bias.per_group_delta_significant.get(key) else "no",
                    "small": "small" if key in small else "",
                })
    return rows


@results_app.command("export")
def export(
    run_id: RunArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv | parquet | json")] = "csv",
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write into (created if missing).")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite tables already exported there.")] = False,
    what: Annotated[str, typer.Option("--what", help="tables (points, per class, per evaluation sample) | samples "
                                      "(every warm-up and timed latency sample of every point)")] = "tables",
    store: StoreOpt = None,
) -> None:
    """Write a run as tables: one row per operating point, plus per-class and per-sample tables; with
    --what samples, one row per raw latency sample (warm-up and timed) of every point.

    A file already there is refused unless --force.
    """
    from harness.store.views import export_run

    st = _open(store)
    try:
        paths = export_run(st, run_id, fmt, out, overwrite=force, what=what)
    finally:
        st.close()
    for p in paths:
        typer.echo(str(p))


@results_app.command("compare")
def compare(run_a: RunArg, run_b: RunArg, store: StoreOpt = None, json_output: JsonOpt = False) -> None:
    """Two runs side by side, matched by variant, runtime and batch size: top-1, worst-class recall, p50
    with its bootstrap interval (noise band), p99, energy per inference and the headline bias metrics."""
    from harness.cli._output import plain, stdout
    from harness.store.views import compare_runs

    st = _open(store)
    try:
        rows = compare_runs(st, run_a, run_b)
    finally:
        st.close()
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    from harness.store.views import COMPARED_METRICS

    shown = [m for m in COMPARED_METRICS if m != "cev" or any(r["cev_a"] is not None or r["cev_b"] is not None for r in rows)]
    metric_columns = [f"{m}_{side}" for m in shown for side in "ab"]
    metric_columns[metric_columns.index("p99_ms_a"):metric_columns.index("p99_ms_a")] = ["p50_ci_ms_a", "p50_ci_ms_b"]
    columns = ["variant_name", "runtime", "batch_size", *metric_columns, "p50_ratio_b_over_a"]
    table_rows = [{**r, **{f"p50_ci_ms_{side}": _band(r[f"p50_ci_ms_{side}"]) for side in "ab"}} for r in rows]
    stdout.print(_table(f"{run_a} (a) vs {run_b} (b); p50_ci_ms: the p50's bootstrap interval (noise band)",
                        table_rows, columns, missing="n/a"))
    reasons = sorted({r[f"energy_unavailable_reason_{side}"] for r in rows for side in "ab"} - {None})
    for reason in reasons:  # why energy is n/a (per point in --json)
        stdout.print(plain(f"energy per inference: n/a ({reason})"))


def _band(ci: list[float] | None) -> str | None:
    return None if not ci else f"{ci[0]:.3f}-{ci[1]:.3f} ms"
