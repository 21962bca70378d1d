"""Constraints and the three selection policies, reported side by side.

Every policy ranks the operating points at one batch size and takes the best-ranked point
that meets its constraints:

- **constraint-first** (the run's decision): best on the primary (first) objective among
  points meeting *every* constraint;
- **weighted-utility**: highest weighted sum of the objectives, each min-max normalised over
  the ranked points (1 = best, a constant axis counts 1 for all), among points meeting every
  constraint; weights default to equal and are rescaled to sum to 1;
- **accuracy-only** (the baseline a fairness-blind user would pick): best on the primary
  objective among points meeting the constraints that are *not* on a fairness metric (the
  catalog's ``fairness`` rows, :mod:`harness.metric_catalog`).

A constraint *binds* when it ruled out a point ranked above the pick. A constraint on a
metric a point lacks makes that point ineligible ("no value for ..."), never a pass.
Drops (``top1_drop``, ``worst_class_drop``, ``max_class_drop``) are fractions against the
dense baseline. The constraint grammar and the weights are the catalog's. Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from harness.errors import ParseError
from harness.metric_catalog import (
    CONSTRAINT_GRAMMAR,
    Constraint,
    Metrics,
    Objective,
    format_value,
    normalise_weights,
    parse_constraint,
    parse_objective,
    parse_weight,
    present,
)
from harness.pareto import cost_vectors, knee_point
from harness.records import OperatingPoint, PolicyChoice, Selection, flat_metrics

if TYPE_CHECKING:
    from harness.config import SelectionSpec

__all__ = [
    "CONSTRAINT_GRAMMAR", "POLICIES", "Constraint", "check_policies", "constraints_from_spec", "dense_baseline",
    "normalise_weights", "parse_constraint", "parse_weight", "rebase", "select_for_spec", "select_operating_point",
]

POLICIES = ("constraint-first", "weighted-utility", "accuracy-only")


def constraints_from_spec(spec: SelectionSpec) -> list[Constraint]:
    """The constraints an experiment's ``[selection]`` asks for: named budgets, then ``constraints``."""
    named = [
        ("top1_drop", "<=", spec.max_top1_drop),
        ("worst_class_drop", "<=", spec.max_worst_class_drop),
        ("max_class_drop", "<=", spec.max_class_drop),
        ("worst_group_accuracy", ">=", spec.min_worst_group_recall),
        (spec.latency_budget_metric, "<=", spec.latency_budget_ms),
        ("energy_per_inference_mj", "<=", spec.energy_budget_mj),
        ("peak_rss_mb", "<=", spec.memory_budget_mb),
    ]
    found = [Constraint(m, op, float(b)) for m, op, b in named if b is not None]  # type: ignore[arg-type]
    return found + [parse_constraint(t) for t in spec.constraints]


def check_policies(names: Sequence[str] | None) -> list[str]:
    """Policy names as given (all three when none); :class:`ParseError` naming an unknown one."""
    for name in names or ():
        if name not in POLICIES:
            raise ParseError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")
    return list(names or POLICIES)


def dense_baseline(points: Sequence[OperatingPoint], batch_size: int) -> OperatingPoint | None:
    """The dense model at ``batch_size`` with an accuracy: on onnxruntime when there, else the first."""
    dense = [p for p in points if p.variant_name == "dense" and p.batch_size == batch_size and p.status == "ok" and p.accuracy]
    return next((p for p in dense if p.runtime == "onnxruntime"), dense[0] if dense else None)


def rebase(points: Sequence[OperatingPoint], baseline: OperatingPoint | None) -> list[OperatingPoint]:
    """Points whose accuracy deltas (and so drops) are against ``baseline``; unchanged without one."""
    from harness.metrics.classification import against_baseline

    if baseline is None or baseline.accuracy is None:
        return list(points)
    return [replace(p, accuracy=against_baseline(p.accuracy, baseline.accuracy)) if p.accuracy else p for p in points]


# ------------------------------------------------------------------ policies


def _describe(p: OperatingPoint, m: Metrics, primary: str) -> str:
    shown = [f"{primary} {format_value(primary, m.get(primary))}"] if primary not in ("top1", "worst_class_recall") else []
    if present(m.get("top1")):
        shown.append(f"top-1 {format_value('top1', m['top1'])}")
    if p.accuracy is not None:
        shown.append(f"worst-class recall {format_value('top1', p.accuracy.worst_class_recall)} ({p.accuracy.worst_class})")
    return f"{p.variant_name} on {p.runtime} (batch {p.batch_size}): {', '.join(shown)}"


def _listed(items: Sequence[str], most: int = 3) -> str:
    return "; ".join(items[:most]) + (f"; and {len(items) - most} more" if len(items) > most else "")


def _pick(
    policy: str, head: str, ranked: Sequence[str], constraints: Sequence[Constraint],
    points: Mapping[str, OperatingPoint], metrics: Mapping[str, Metrics], primary: str,
    utility: Mapping[str, float] | None = None, *, unranked: str, ignored: str = "",
) -> PolicyChoice:
    """The first ranked point meeting ``constraints``; binding = constraints that ruled out a better one."""
    ruled_out: dict[str, list[str]] = {}
    failed: set[Constraint] = set()
    pick = None
    for pid in ranked:
        bad = [(c, why) for c in constraints if (why := c.violation(metrics[pid])) is not None]
        if not bad:
            pick = pid
            break
        ruled_out[pid] = [why for _, why in bad]
        failed.update(c for c, _ in bad)
    binding = [str(c) for c in constraints if c in failed]
    shown = [f"{pid} ({'; '.join(whys)})" for pid, whys in ruled_out.items()]
    rules = f"points meeting {', '.join(str(c) for c in constraints)}" if constraints else "all points (no constraints)"
    if pick is None:
        why = f"no point meets {', '.join(str(c) for c in constraints)}" if ranked else unranked
        reason = f"nothing selected ({policy}): {why}{ignored}" + (f"; ruled out: {_listed(shown)}" if shown else "")
        return PolicyChoice(policy, None, reason, binding, None)
    reason = f"{head} among {rules}{ignored}: {_describe(points[pick], metrics[pick], primary)}"
    if shown:
        reason += f". Binding: {', '.join(binding)}, ruling out better-ranked {_listed(shown)}"
    return PolicyChoice(policy, pick, reason, binding, utility[pick] if utility is not None else None)


def _utilities(vectors: Mapping[str, Sequence[float]], weights: Sequence[float]) -> dict[str, float]:
    """Weighted sum of min-max normalised costs, 1 = best on every axis."""
    n = len(weights)
    lo = [min((v[i] for v in vectors.values()), default=0.0) for i in range(n)]
    hi = [max((v[i] for v in vectors.values()), default=0.0) for i in range(n)]
    return {
        pid: sum(w * (1.0 if hi[i] == lo[i] else (hi[i] - v[i]) / (hi[i] - lo[i])) for i, w in enumerate(weights))
        for pid, v in vectors.items()
    }


def _tightest(constraints: Sequence[Constraint]) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in constraints:
        old = out.get(c.key)
        out[c.key] = c.bound if old is None else (min if c.op == "<=" else max)(old, c.bound)
    return out


def select_operating_point(
    points: Sequence[OperatingPoint],
    baseline: OperatingPoint | None,
    *,
    batch_size: int,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    weights: Mapping[str, float] | None = None,
) -> Selection:
    """Every policy's pick at ``batch_size``, the knee of the front over the first two objectives.

    With a ``baseline`` the drops are recomputed against it (the run's decision: one dense
    reference); without one, each point's stored drops are used (vs the dense model of its
    own run and runtime). ``Selection.point_id`` is the constraint-first pick.
    """
    objectives = list(objectives)
    primary = objectives[0]
    pool = {p.point_id: p for p in rebase(points, baseline) if p.batch_size == batch_size}
    metrics = {pid: flat_metrics(p) for pid, p in pool.items()}
    items = {pid: (p.status, metrics[pid]) for pid, p in pool.items()}
    first, _ = cost_vectors(items, [primary])
    by_primary = sorted(first, key=lambda pid: (first[pid][0], pid))
    full, _ = cost_vectors(items, objectives)
    w = normalise_weights(weights or {}, objectives)
    utility = _utilities(full, [w[o.metric] for o in objectives])
    by_utility = sorted(full, key=lambda pid: (-utility[pid], pid))
    best = "lowest" if primary.direction == "min" else "highest"
    fair_blind = [c for c in constraints if not c.fairness]
    shown_w = ", ".join(f"{m} {v:.2f}" for m, v in w.items())
    args = (pool, metrics, primary.metric)
    unranked = f"no completed point at batch {batch_size} has a value for {primary.metric}"
    cf = _pick("constraint-first", f"{best} {primary.metric}", by_primary, constraints, *args, unranked=unranked)
    ignored = [str(c) for c in constraints if c.fairness]
    ao = _pick("accuracy-only", f"{best} {primary.metric}", by_primary, fair_blind, *args, unranked=unranked,
               ignored=f" (fairness constraints ignored: {', '.join(ignored)})" if ignored else "")
    head = f"highest weighted utility (weights {shown_w}; axes min-max normalised over {len(full)} ranked points)"
    wu = _pick("weighted-utility", head, by_utility, constraints, *args, utility,
               unranked=f"no completed point at batch {batch_size} has a value for every objective")
    changed = cf.point_id != ao.point_id
    reason = cf.reason
    if changed and ao.point_id is not None:
        fails = [why for c in constraints if (why := c.violation(metrics[ao.point_id])) is not None]
        reason += (
            f". Fairness changed the choice: the accuracy-only pick {pool[ao.point_id].variant_name} on "
            f"{pool[ao.point_id].runtime}: {'; '.join(fails)}"
        )
    if len(objectives) < 2:
        knee_id, knee_reason = None, "no knee: it needs two objectives"
    else:
        knee = knee_point(list(pool.values()), objectives[:2])
        knee_id, knee_reason = knee.point_id, knee.reason
    return Selection(
        point_id=cf.point_id,
        reason=reason,
        accuracy_only_point_id=ao.point_id,
        accuracy_only_reason=ao.reason,
        fairness_changed_choice=changed,
        batch_size=batch_size,
        constraints=_tightest(constraints),
        policies=[cf, wu, ao],
        knee_point_id=knee_id,
        knee_reason=knee_reason,
    )


def select_for_spec(points: Sequence[OperatingPoint], spec: SelectionSpec) -> Selection:
    """The run's decision: ``spec``'s objectives, constraints and weights against the dense baseline."""
    return select_operating_point(
        points,
        dense_baseline(points, spec.batch_size),
        batch_size=spec.batch_size,
        objectives=[parse_objective(o) for o in spec.objectives],
        constraints=constraints_from_spec(spec),
        weights=spec.weights,
    )

