"""Objectives as data, the Pareto front, its knee, and fronts compared across techniques.

Pure functions over :class:`~harness.records.OperatingPoint`; no I/O. Every objective is
turned into a value to *minimise* (``max`` objectives are negated) before comparing.
The metrics an objective may name and the objective grammar are :mod:`harness.metric_catalog`'s;
selection policies and constraints live in :mod:`harness.selection`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from harness.errors import ParseError
from harness.metric_catalog import Direction, Metrics, Objective, parse_objective, present, resolve_metric
from harness.records import OperatingPoint, flat_metrics

__all__ = [
    "Direction", "FrontResult", "KneeResult", "Metrics", "Objective", "TechniqueComparison", "compare_techniques",
    "cost_vectors", "dominates", "fronts_by", "knee_point", "non_dominated", "parse_objective", "pareto_front",
    "present", "resolve_metric", "technique_of", "weakly_dominates",
]


def cost_vectors(
    items: Mapping[str, tuple[str, Metrics]], objectives: Sequence[Objective]
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """``id -> (status, metrics)`` to minimised vectors, and ``id -> why it cannot be ranked``."""
    vectors: dict[str, list[float]] = {}
    excluded: dict[str, str] = {}
    for pid in sorted(items):
        status, metrics = items[pid]
        if status != "ok":
            excluded[pid] = f"status {status}"
            continue
        missing = [o.metric for o in objectives if not present(metrics.get(o.metric))]
        if missing:
            excluded[pid] = f"no value for {', '.join(missing)}"
            continue
        vectors[pid] = [o.cost(metrics[o.metric]) for o in objectives]  # type: ignore[arg-type]
    return vectors, excluded


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is no worse than ``b`` everywhere and strictly better somewhere (minimising)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def weakly_dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is no worse than ``b`` on every objective (minimising)."""
    return all(x <= y for x, y in zip(a, b, strict=True))


def non_dominated(vectors: Mapping[str, Sequence[float]]) -> list[str]:
    """Ids whose vector no other vector dominates, sorted; equal vectors all stay."""
    return sorted(
        pid for pid, v in vectors.items() if not any(dominates(w, v) for qid, w in vectors.items() if qid != pid)
    )


@dataclass(frozen=True)
class FrontResult:
    front: list[str]  # point ids on the front, sorted
    excluded: dict[str, str]  # point id -> why it could not be ranked


def _items(points: Sequence[OperatingPoint]) -> dict[str, tuple[str, Metrics]]:
    return {p.point_id: (p.status, flat_metrics(p)) for p in points}


def pareto_front(points: Sequence[OperatingPoint], objectives: Sequence[Objective]) -> FrontResult:
    """Non-dominated points among those with a value for every objective.

    Points with a missing value (failed, or a metric that could not be measured) are
    excluded and listed. Duplicate objective vectors are all kept on the front. Order is
    by point id, so the result is deterministic.
    """
    vectors, excluded = cost_vectors(_items(points), objectives)
    return FrontResult(front=non_dominated(vectors), excluded=excluded)


def fronts_by(
    points: Sequence[OperatingPoint], objectives: Sequence[Objective], key: Callable[[OperatingPoint], str]
) -> dict[str, FrontResult]:
    """One front per group (``key(point)``: a target, a technique ...), groups sorted."""
    groups: dict[str, list[OperatingPoint]] = {}
    for p in points:
        groups.setdefault(key(p), []).append(p)
    return {name: pareto_front(groups[name], objectives) for name in sorted(groups)}


# ------------------------------------------------------------------ knee


@dataclass(frozen=True)
class KneeResult:
    """The knee of a two-objective front, or ``None`` with the reason there is none."""

    point_id: str | None
    reason: str
    objectives: list[str]
    distance: float | None = None  # normalised distance from the chord between the extremes


KNEE_METHOD = (
    "largest distance towards the ideal point from the line joining the front's two extremes, "
    "both axes min-max normalised over the front"
)


def knee_point(points: Sequence[OperatingPoint], objectives: Sequence[Objective]) -> KneeResult:
    """Knee of the front over exactly two objectives (distance-to-chord method, Das 1999).

    Normalised over the front (0 = best), the extremes sit at (0, 1) and (1, 0), so the
    chord is ``x + y = 1`` and a point's distance towards the ideal point (0, 0) is
    ``(1 - x - y) / sqrt(2)``. The knee is the point farthest on that side; ties go to the
    smaller point id. A front of fewer than 3 distinct points, or one with no point inside
    the chord (straight or concave), has no knee.
    """
    names = [str(o) for o in objectives]
    if len(objectives) != 2:
        raise ParseError(f"a knee needs exactly two objectives, got {len(objectives)}: {', '.join(names)}")
    vectors, _ = cost_vectors(_items(points), objectives)
    front = non_dominated(vectors)
    distinct = {tuple(vectors[p]) for p in front}
    over = f"{names[0]} vs {names[1]}"
    if len(distinct) < 3:
        return KneeResult(None, f"no knee: the front over {over} has {len(distinct)} distinct point(s), a knee needs 3", names)
    lo = [min(vectors[p][i] for p in front) for i in (0, 1)]
    span = [max(vectors[p][i] for p in front) - lo[i] for i in (0, 1)]  # > 0: >= 2 distinct non-dominated points
    distance = {p: (1 - sum((vectors[p][i] - lo[i]) / span[i] for i in (0, 1))) / math.sqrt(2) for p in front}
    best = min(front, key=lambda p: (-distance[p], p))
    if distance[best] <= 1e-12:
        return KneeResult(None, f"no knee: no point of the front over {over} lies inside the line between its extremes", names)
    return KneeResult(
        best, f"knee of the front over {over}: {KNEE_METHOD}; {best} is {distance[best]:.3f} from that line",
        names, distance[best],
    )


# ------------------------------------------------------------------ techniques


def technique_of(point: OperatingPoint) -> str:
    """``prune_method/precision``, e.g. ``magnitude/int8``; the dense fp32 model is ``none/fp32``."""
    return f"{point.prune_method}/{point.precision}"


@dataclass(frozen=True)
class TechniqueComparison:
    """Two techniques' fronts; coverage is Zitzler's C-metric (share of one front weakly dominated)."""

    a: str
    b: str
    a_front: list[str]
    b_front: list[str]
    coverage_a_over_b: float | None  # share of b's front weakly dominated by some point of a's front
    coverage_b_over_a: float | None
    a_dominates_b: bool  # every point of b's front is weakly dominated by a's, and not the reverse
    b_dominates_a: bool
    verdict: str


def compare_techniques(
    points: Sequence[OperatingPoint],
    objectives: Sequence[Objective],
    key: Callable[[OperatingPoint], str] = technique_of,
) -> list[TechniqueComparison]:
    """Every pair of techniques (sorted), each compared on its own front over ``objectives``."""
    groups = sorted({key(p) for p in points})
    vectors, _ = cost_vectors(_items(points), objectives)
    members = {g: {p.point_id for p in points if key(p) == g} for g in groups}
    fronts = {g: non_dominated({pid: v for pid, v in vectors.items() if pid in members[g]}) for g in groups}
    out = []
    for a, b in combinations(groups, 2):
        fa, fb = fronts[a], fronts[b]
        if not fa or not fb:
            empty = a if not fa else b
            out.append(TechniqueComparison(a, b, fa, fb, None, None, False, False,
                                           f"cannot compare: {empty} has no point with a value for every objective"))
            continue

        def coverage(x: list[str], y: list[str]) -> float:
            return sum(any(weakly_dominates(vectors[i], vectors[j]) for i in x) for j in y) / len(y)

        c_ab, c_ba = coverage(fa, fb), coverage(fb, fa)
        a_dom, b_dom = c_ab == 1 and c_ba < 1, c_ba == 1 and c_ab < 1
        if a_dom or b_dom:
            winner, loser = (a, b) if a_dom else (b, a)
            verdict = f"{winner} dominates {loser}: every point of {loser}'s front is matched or beaten"
        elif c_ab == 1:
            verdict = "the fronts are identical"
        else:
            verdict = f"neither dominates: the fronts cross ({a} covers {c_ab:.0%} of {b}, {b} covers {c_ba:.0%} of {a})"
        out.append(TechniqueComparison(a, b, fa, fb, c_ab, c_ba, a_dom, b_dom, verdict))
    return out
