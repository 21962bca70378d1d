"""Read-only views of the store: run listings, flat tables for export, and run comparisons.

The store is the source of truth; CSV, JSON and Parquet are views of it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, MissingDependency
from harness.report.summary import point_summary
from harness.store import schema as s
from harness.store.store import Store

EXPORT_FORMATS = ("csv", "json", "parquet")


def require_run(store: Store, run_id: str) -> dict[str, Any]:
    row = store.run_row(run_id)
    if row is None:
        known = [r["run_id"] for r in store.runs()][-5:]
        raise ConfigError(f"no run {run_id!r} in {store.url}; latest: {', '.join(known) or 'none'}")
    return row


def run_listing(store: Store) -> list[dict[str, Any]]:
    """One line per run: id, experiment, status, point counts, start and end."""
    out = []
    for r in store.runs():
        points = store.points(r["run_id"])
        out.append(
            {
                "run_id": r["run_id"],
                "experiment": r["experiment_name"],
                "status": r["status"],
                "n_points": len(points),
                "n_expected": r["n_expected"],
                "n_failed": sum(p["status"] != "ok" for p in points),
                "started_at": r["started_at"],
                "finished_at": r["finished_at"],
                "chosen_point": (json.loads(r["selection_json"]) or {}).get("point_id") if r["selection_json"] else None,
            }
        )
    return out


def _flat(summary: dict[str, Any]) -> dict[str, Any]:
    """A point summary without its nested per-class maps (those go to their own table)."""
    return {k: v for k, v in summary.items() if not isinstance(v, dict)}


def run_tables(store: Store, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """``points`` (one row per operating point), ``per_class`` and ``per_sample`` tables of a run."""
    require_run(store, run_id)
    points = [dict(run_id=run_id, **_flat(point_summary(p))) for p in store.operating_points(run_id)]
    names = {p["variant_id"]: p["variant_name"] for p in points}
    per_class: list[dict[str, Any]] = []
    per_sample: list[dict[str, Any]] = []
    with store.engine.connect() as conn:
        for r in conn.execute(s.per_class.select().where(s.per_class.c.run_id == run_id)).all():
            per_class.append(
                {
                    "run_id": run_id, "variant_id": r.variant_id, "variant_name": names.get(r.variant_id),
                    "runtime": r.runtime, "class_name": r.class_name, "support": r.support,
                    "recall": r.recall, "delta_vs_dense": r.delta_vs_dense,
                }
            )
        for r in conn.execute(s.evaluations.select().where(s.evaluations.c.run_id == run_id)).all():
            for index, label, pred in zip(
                json.loads(r.sample_index_json), json.loads(r.labels_json), json.loads(r.predictions_json), strict=True
            ):
                per_sample.append(
                    {
                        "run_id": run_id, "variant_id": r.variant_id, "variant_name": names.get(r.variant_id),
                        "runtime": r.runtime, "sample_index": index, "label": label, "prediction": pred,
                        "correct": label == pred,
                    }
                )
    return {"points": points, "per_class": per_class, "per_sample": per_sample}


def sample_table(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every raw latency sample of a run, one row each: the point, ``phase`` (``warmup`` or ``timed``), its
    index within that phase and ``latency_ms`` (per query, at the point's batch size), in measured order."""
    require_run(store, run_id)
    points = {p.point_id: p for p in store.operating_points(run_id)}
    ls = s.latency_samples
    rows: list[dict[str, Any]] = []
    with store.engine.connect() as conn:
        for r in conn.execute(ls.select().where(ls.c.run_id == run_id).order_by(ls.c.point_id)).all():
            p = points.get(r.point_id)
            for phase, raw in (("warmup", r.warmup_ms_json), ("timed", r.samples_ms_json)):
                rows += [{"run_id": run_id, "point_id": r.point_id, "variant_name": p.variant_name if p else None,
                          "runtime": p.runtime if p else None, "batch_size": p.batch_size if p else None,
                          "phase": phase, "index": i, "latency_ms": ms} for i, ms in enumerate(json.loads(raw))]
    return rows


#: what ``harness results export --what`` writes: the run's tables, or its raw latency samples
EXPORT_WHAT = ("tables", "samples")


def export_run(store: Store, run_id: str, fmt: str, out_dir: Path, *, overwrite: bool = True,
               what: str = "tables") -> list[Path]:
    """Write the run's tables as ``<run>-<table>.csv|parquet`` or one ``<run>.json``; with
    ``what="samples"`` its raw latency samples (:func:`sample_table`) as ``<run>-latency_samples.<fmt>``
    (JSON: ``{"latency_samples": rows}``).

    ``overwrite=False`` refuses, before writing anything, when one of those files exists.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if what not in EXPORT_WHAT:
        raise ConfigError(f"unknown export {what!r}; choose one of {', '.join(EXPORT_WHAT)}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"export folder {out_dir} is a file: give a folder to write the tables into")
    if what == "samples":
        tables = {"latency_samples": sample_table(store, run_id)}
        targets = [out_dir / f"{run_id}-latency_samples.{fmt}"]
    else:
        tables = run_tables(store, run_id)
        targets = [out_dir / f"{run_id}.json"] if fmt == "json" else [out_dir / f"{run_id}-{name}.{fmt}" for name in tables]
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]} exists; pass --force to overwrite it")
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        targets[0].write_text(json.dumps(tables, indent=1))
        return targets
    for path, rows in zip(targets, tables.values(), strict=True):
        (_write_csv if fmt == "csv" else _write_parquet)(path, rows)
    return targets


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_columns(rows))
        writer.writeheader()
        writer.writerows(rows)


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependency("pyarrow", extra="parquet", purpose="Parquet export") from None
    columns = _columns(rows)
    pq.write_table(pa.table({c: [row.get(c) for row in rows] for c in columns}), path)


#: the catalog metrics :func:`compare_runs` puts side by side, ``<metric>_a`` and ``<metric>_b``
COMPARED_METRICS = ("top1", "worst_class_recall", "p50_ms", "p99_ms", "energy_per_inference_mj",
                    "worst_class_drop", "cie_fraction", "cev")


def _energy_reason(p: Any) -> str | None:
    if p is None:
        return "absent from this run"
    if p.energy is None:
        return "not measured: the operating point failed"
    return p.energy.unavailable_reason if p.energy.energy_per_inference_mj is None else None


def compare_runs(store: Store, run_a: str, run_b: str) -> list[dict[str, Any]]:
    """Operating points matched by (variant name, runtime, batch), side by side: accuracy, p50 with its
    bootstrap interval (the noise band, ``p50_ci_ms``), p99, energy per inference (None with
    ``energy_unavailable_reason``) and the headline bias metrics (worst-class drop, CIE fraction, CEV)."""
    require_run(store, run_a)
    require_run(store, run_b)

    def by_key(run_id: str) -> dict[tuple, Any]:
        return {(p.variant_name, p.runtime, p.batch_size): p for p in store.operating_points(run_id)}

    a, b = by_key(run_a), by_key(run_b)
    rows = []
    for key in sorted(a.keys() | b.keys()):
        pa_, pb = a.get(key), b.get(key)
        row: dict[str, Any] = {"variant_name": key[0], "runtime": key[1], "batch_size": key[2]}
        for side, p in (("a", pa_), ("b", pb)):
            for name in COMPARED_METRICS:
                row[f"{name}_{side}"] = p.metric(name) if p else None
            row[f"p50_ci_ms_{side}"] = p.latency.p50_ci_ms if p and p.latency else None
            row[f"energy_unavailable_reason_{side}"] = (
                _energy_reason(p) if row[f"energy_per_inference_mj_{side}"] is None else None)
            row[f"status_{side}"] = p.status if p else "absent"
        pa50, pb50 = row["p50_ms_a"], row["p50_ms_b"]
        row["p50_ratio_b_over_a"] = pb50 / pa50 if pa50 and pb50 else None
        rows.append(row)
    return rows


def latest_finished_run(store: Store) -> str:
    """The id of the newest run that has a report (a card can be rendered from it)."""
    done = [r["run_id"] for r in store.runs() if r.get("report_json")]
    if not done:
        raise ConfigError(f"no finished run in {store.url}: run `harness run` first")
    return done[-1]


def load_report(store: Store, run_id: str):
    """The finished run's full record, as written when its operating point was chosen."""
    from harness.records import report_from_dict

    row = require_run(store, run_id)
    if not row.get("report_json"):
        raise ConfigError(f"run {run_id} has no report yet (status {row['status']}): finish it first")
    return report_from_dict(json.loads(row["report_json"]))


def latest_run(store: Store) -> str:
    """The most recent run that has operating points (``harness pareto`` with no RUN)."""
    for r in reversed(store.runs()):
        if store.points(r["run_id"]):
            return r["run_id"]
    raise ConfigError(f"no run with operating points in {store.url}: run `harness run` first")


def run_target(store: Store, run_id: str) -> str | None:
    """The device profile a run was measured on: its fleet jobs' target, else the experiment's ``target``."""
    with store.engine.connect() as conn:
        queued = {r.target for r in conn.execute(s.jobs.select().where(s.jobs.c.run_id == run_id)).all()}
    if len(queued) == 1:
        return queued.pop()
    return json.loads(require_run(store, run_id)["experiment_json"]).get("target")


def run_selection(store: Store, run_id: str):
    """The run's own ``[selection]`` (objectives, budgets, weights) as a :class:`SelectionSpec`."""
    from harness.config import SelectionSpec

    return SelectionSpec(**json.loads(require_run(store, run_id)["experiment_json"]).get("selection", {}))


def front_table(
    store: Store,
    run_ids: list[str],
    objectives: list[str],
    batch_size: int,
    *,
    constraints: list[str] | None = None,
    weights: dict[str, float] | None = None,
    policies: list[str] | None = None,
) -> dict[str, Any]:
    """The Pareto front over ``objectives`` of the points of one or several runs (e.g. one per target).

    Beside it: every policy's pick under ``constraints`` (default: the first run's own), the knee,
    techniques compared on their fronts within each target, and a front per target. With several runs, points are named
    ``<run>:<point>`` so the same variant on two targets stays apart; drops are against each run's
    own dense baseline.
    """
    from dataclasses import replace

    from harness.pareto import compare_techniques, fronts_by, pareto_front, parse_objective, technique_of
    from harness.records import to_dict
    from harness.selection import (
        check_policies,
        constraints_from_spec,
        dense_baseline,
        parse_constraint,
        rebase,
        select_operating_point,
    )

    parsed = [parse_objective(o) for o in objectives]
    shown = check_policies(policies)
    spec = run_selection(store, run_ids[0])
    rules = constraints_from_spec(spec) if constraints is None else [parse_constraint(c) for c in constraints]
    own_objectives = [parse_objective(o) for o in spec.objectives]  # the run's weights apply to these only
    keyed, target = {}, {}
    for run_id in run_ids:
        where = run_target(store, run_id) or "unspecified"
        points = [p for p in store.operating_points(run_id) if p.batch_size == batch_size]
        for p in rebase(points, dense_baseline(points, batch_size)):
            key = f"{run_id}:{p.point_id}" if len(run_ids) > 1 else p.point_id
            keyed[key], target[key] = replace(p, point_id=key), where
    points = [keyed[k] for k in sorted(keyed)]
    result = pareto_front(points, parsed)
    selection = select_operating_point(
        points, None, batch_size=batch_size, objectives=parsed, constraints=rules,
        weights=weights if weights is not None else spec.weights if parsed == own_objectives else None,
    )
    rows = [
        {"point": p.point_id, "target": target[p.point_id], "technique": technique_of(p),
         "on_front": p.point_id in result.front, "excluded": result.excluded.get(p.point_id),
         **{o.metric: p.metric(o.metric) for o in parsed}}
        for p in points
    ]
    return {
        "objectives": [str(o) for o in parsed],
        "batch_size": batch_size,
        "constraints": [str(c) for c in rules],
        "front": result.front,
        "excluded": result.excluded,
        "points": rows,
        "policies": [to_dict(c) for c in selection.policies if c.policy in shown],
        "fairness_changed_choice": selection.fairness_changed_choice,
        "knee": {"point": selection.knee_point_id, "reason": selection.knee_reason},
        "techniques": [  # compared within each target: one device's numbers against another's says little
            {"target": name, **to_dict(c)}
            for name in sorted(set(target.values()))
            for c in compare_techniques([p for p in points if target[p.point_id] == name], parsed)
        ],
        "targets": {name: to_dict(f) for name, f in fronts_by(points, parsed, key=lambda p: target[p.point_id]).items()},
    }
