"""The metric catalog: every metric an objective, a constraint or a weight may name, one row each.

A row says the metric's unit, which direction is better, whether it is a fraction, whether it is a
*fairness* metric (about who the model fails: the accuracy-only policy ignores constraints on
those), whether it is measured against the dense baseline, a one-line description, and how it is
read from an :class:`~harness.records.OperatingPoint` (an attribute path such as
``latency.p50_ms``, read duck-typed, so this module imports nothing of the records).

The objective grammar (``NAME:min|max``), the constraint grammar (``METRIC<=NUMBER`` /
``METRIC>=NUMBER``) and the utility weights parse against this table;
:func:`harness.records.flat_metrics`, the selection policies, the exported tables and
``docs/selection.md`` (:func:`markdown_table`) read it. Pure; stdlib only.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.errors import ParseError

Direction = Literal["min", "max"]
Metrics = Mapping[str, float | None]

#: units a row may have; "fraction" is a share in [0, 1], "fraction difference" a difference of
#: two fractions (printed in percentage points)
UNITS = ("ms", "samples/s", "MB", "mJ", "fraction", "fraction difference", "count", "score")


def _path(source: str) -> Callable[[Any], float | None]:
    """Reader of a dotted attribute path; None when any step is None."""
    steps = source.split(".")

    def read(point: Any) -> float | None:
        value = point
        for step in steps:
            value = getattr(value, step, None)
            if value is None:
                return None
        return value

    return read


def _negated(source: str) -> Callable[[Any], float | None]:
    inner = _path(source)

    def read(point: Any) -> float | None:
        value = inner(point)
        return None if value is None else -value

    return read


def _max_class_drop(point: Any) -> float | None:
    """Largest per-class recall drop against the dense baseline (None without a baseline)."""
    acc = getattr(point, "accuracy", None)
    if acc is None:
        return None
    drops = [-d for d in acc.per_class_delta.values() if d is not None]
    return max(drops) if drops else None


@dataclass(frozen=True)
class Metric:
    """One row of the catalog."""

    name: str
    unit: str  # one of UNITS
    direction: Direction  # the better direction, taken by a bare objective name
    fairness: bool  # about who the model fails; the accuracy-only policy ignores constraints on it
    description: str
    source: str  # where the value comes from on an OperatingPoint, in words or as an attribute path
    read: Callable[[Any], float | None] = field(repr=False, compare=False)
    vs_baseline: bool = False  # a difference from the dense baseline's value: without a baseline there is none

    @property
    def fraction(self) -> bool:
        """A share (or a difference of shares): printed as a percentage (or in percentage points)."""
        return self.unit in ("fraction", "fraction difference")

    def format(self, value: float | None) -> str:
        """The value as a reason or a table prints it."""
        if value is None:
            return "n/a"
        if self.unit == "ms":
            return f"{value:.3f} ms"
        if self.unit == "fraction difference":
            return f"{100 * value:.1f} pp"
        return f"{100 * value:.1f}%" if self.unit == "fraction" else f"{value:.4g}"


def _row(name: str, unit: str, direction: Direction, fairness: bool, description: str, source: str,
         read: Callable[[Any], float | None] | None = None, *, vs_baseline: bool = False) -> Metric:
    return Metric(name, unit, direction, fairness, description, source, read or _path(source), vs_baseline)


#: the catalog, in the order tables list it
METRICS: tuple[Metric, ...] = (
    # latency (per query, nearest-rank percentiles) and throughput
    _row("p50_ms", "ms", "min", False, "median latency per query (nearest rank)", "latency.p50_ms"),
    _row("p90_ms", "ms", "min", False, "90th-percentile latency per query", "latency.p90_ms"),
    _row("p99_ms", "ms", "min", False, "99th-percentile latency per query", "latency.p99_ms"),
    _row("mean_ms", "ms", "min", False, "mean latency per query", "latency.mean_ms"),
    _row("throughput_sps", "samples/s", "max", False, "samples per second", "latency.throughput_sps"),
    # memory, size, energy
    _row("peak_rss_mb", "MB", "min", False, "peak resident memory of the measuring process", "memory.peak_rss_mb"),
    _row("artifact_mb", "MB", "min", False, "size of the deployed file", "artifact.file_mb"),
    _row("energy_per_inference_mj", "mJ", "min", False, "energy per inference, when a meter measured it",
         "energy.energy_per_inference_mj"),
    _row("sparsity", "fraction", "max", False, "share of zero weights, read from the artifact",
         "artifact.weight_sparsity"),
    # accuracy, and its drops against the dense baseline (fractions, positive drop = worse)
    _row("top1", "fraction", "max", False, "top-1 accuracy", "accuracy.top1"),
    _row("top1_delta", "fraction difference", "max", False, "top-1 minus the dense baseline's",
         "accuracy.top1_delta", vs_baseline=True),
    _row("top1_drop", "fraction difference", "min", False, "the dense baseline's top-1 minus this one's",
         "-accuracy.top1_delta", _negated("accuracy.top1_delta"), vs_baseline=True),
    _row("top5", "fraction", "max", False, "top-5 accuracy (none with 5 classes or fewer)", "accuracy.top5"),
    _row("worst_class_recall", "fraction", "max", True, "the lowest per-class recall",
         "accuracy.worst_class_recall"),
    _row("worst_class_drop", "fraction difference", "min", True,
         "the dense baseline's worst-class recall minus this one's", "accuracy.worst_class_drop", vs_baseline=True),
    _row("max_class_drop", "fraction difference", "min", True, "the largest per-class recall drop",
         "max of -accuracy.per_class_delta", _max_class_drop, vs_baseline=True),
    _row("worst_group_accuracy", "fraction", "max", True, "the lowest accuracy over the group attributes",
         "accuracy.worst_group_accuracy"),
    # bias against the dense model
    _row("cev", "score", "min", True, "combined error variance of the per-class error rates (bias.cev_variant)",
         "bias.cev"),
    _row("sde", "score", "min", True, "symmetric distance error of the per-class error rates", "bias.sde"),
    _row("cie_fraction", "fraction", "min", True, "share of compression identified exemplars", "bias.cie_fraction"),
    _row("ece", "fraction", "min", True, "top-label expected calibration error (15 bins)", "bias.ece"),
    _row("n_classes_hurt", "count", "min", True, "classes whose recall dropped more than top-1 did",
         "bias.n_classes_hurt"),
    _row("bias_amp_delta", "fraction difference", "min", True,
         "directional bias amplification A->T minus the dense model's", "bias.bias_amp_a_to_t_delta"),
    _row("calibrated_top1", "fraction", "max", False, "top-1 with the threshold calibrated (binary targets)",
         "bias.calibrated_top1"),
)

#: name -> row
BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}

#: other names accepted for a metric. The recall of a group (share of its samples given their
#: true label) is that group's accuracy, so "worst_group_recall" is ``worst_group_accuracy``.
METRIC_ALIASES: dict[str, str] = {"worst_group_recall": "worst_group_accuracy"}

#: names of the fairness metrics (rows with ``fairness``)
FAIRNESS_METRICS = frozenset(m.name for m in METRICS if m.fairness)

#: metrics a latency budget may be set on (rows in ms)
LATENCY_METRICS = tuple(m.name for m in METRICS if m.unit == "ms")


def resolve_metric(name: str, what: str = "metric") -> str:
    """The catalog name of ``name`` (aliases resolved); :class:`ParseError` naming it if unknown."""
    name = name.strip()
    name = METRIC_ALIASES.get(name, name)
    if name not in BY_NAME:
        close = difflib.get_close_matches(name, [*BY_NAME, *METRIC_ALIASES], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ParseError(f"unknown {what} {name!r}{hint}; known: {', '.join(sorted(BY_NAME))}")
    return name


def metric(name: str) -> Metric:
    """The row of ``name`` (aliases resolved); :class:`ParseError` if unknown."""
    return BY_NAME[resolve_metric(name)]


def metric_of_key(key: str) -> Metric | None:
    """The row a :attr:`Selection.constraints` key (``max_top1_drop``, ``min_worst_group_accuracy``) is on."""
    if key in BY_NAME:
        return BY_NAME[key]
    for prefix in ("max_", "min_"):
        if key.startswith(prefix) and key.removeprefix(prefix) in BY_NAME:
            return BY_NAME[key.removeprefix(prefix)]
    return None


def read_metrics(point: Any) -> dict[str, float | None]:
    """Every catalog metric of ``point``, in catalog order (None: not measured or not applicable)."""
    return {m.name: m.read(point) for m in METRICS}


def present(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def format_value(name: str, value: float | None) -> str:
    """``value`` of metric ``name`` as reasons print it (``n/a`` when missing)."""
    row = BY_NAME.get(name)
    if row is None:
        return "n/a" if value is None else f"{value:.4g}"
    return row.format(value)


# ------------------------------------------------------------------ objectives


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: Direction

    def __str__(self) -> str:
        return f"{self.metric}:{self.direction}"

    def cost(self, value: float) -> float:
        """The value as something to minimise."""
        return value if self.direction == "min" else -value


def parse_objective(text: str) -> Objective:
    """``"p50_ms:min"`` -> Objective; a bare metric name takes its natural direction."""
    name, _, direction = text.partition(":")
    name = resolve_metric(name, "objective metric")
    direction = direction.strip() or BY_NAME[name].direction
    if direction not in ("min", "max"):
        raise ParseError(f"objective {text!r}: direction must be 'min' or 'max', got {direction!r}")
    return Objective(name, direction)  # type: ignore[arg-type]


# ------------------------------------------------------------------ constraints

_CONSTRAINT = re.compile(r"\s*([A-Za-z_]\w*)\s*(<=|>=)\s*(\S+)\s*")
CONSTRAINT_GRAMMAR = "METRIC<=NUMBER or METRIC>=NUMBER (inclusive), e.g. 'p99_ms<=5', 'worst_group_accuracy>=0.8'"


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: Literal["<=", ">="]
    bound: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"

    @property
    def key(self) -> str:
        """Name in :attr:`Selection.constraints`: ``max_p99_ms``, ``min_worst_group_accuracy`` ..."""
        prefix = "max_" if self.op == "<=" else "min_"
        return self.metric if self.metric.startswith(prefix) else prefix + self.metric

    @property
    def fairness(self) -> bool:
        """True when the constrained metric is a fairness metric."""
        return self.metric in FAIRNESS_METRICS

    def violation(self, metrics: Metrics) -> str | None:
        """Why a point with ``metrics`` fails this constraint, or None when it meets it."""
        value = metrics.get(self.metric)
        if not present(value):
            row = BY_NAME.get(self.metric)
            return f"no value for {self.metric}" + (
                " (no dense baseline to compare with)" if row is not None and row.vs_baseline else "")
        ok = value <= self.bound + 1e-12 if self.op == "<=" else value >= self.bound - 1e-12  # type: ignore[operator]
        return None if ok else f"{self} fails at {format_value(self.metric, value)}"


def parse_constraint(text: str) -> Constraint:
    """``"p99_ms<=5"`` -> Constraint; :class:`ParseError` naming the culprit otherwise."""
    m = _CONSTRAINT.fullmatch(text)
    if m is None:
        raise ParseError(f"constraint {text!r}: expected {CONSTRAINT_GRAMMAR}")
    name = resolve_metric(m[1], f"metric in constraint {text!r}:")
    try:
        bound = float(m[3])
    except ValueError:
        bound = math.nan
    if not math.isfinite(bound):
        raise ParseError(f"constraint {text!r}: bound {m[3]!r} is not a finite number")
    return Constraint(name, m[2], bound)  # type: ignore[arg-type]


# ------------------------------------------------------------------ weights


def parse_weight(text: str) -> tuple[str, float]:
    """``"top1=2"`` -> ("top1", 2.0) for ``--weight``."""
    name, sep, value = text.partition("=")
    try:
        weight = float(value) if sep else math.nan
    except ValueError:
        weight = math.nan
    if not math.isfinite(weight):
        raise ParseError(f"weight {text!r}: expected METRIC=NUMBER, e.g. 'top1=2'")
    return resolve_metric(name, f"metric in weight {text!r}:"), weight


def normalise_weights(weights: Mapping[str, float], objectives: Sequence[Objective]) -> dict[str, float]:
    """Weight per objective metric, summing to 1; equal weights when none are given."""
    names = [o.metric for o in objectives]
    if not weights:
        return {m: 1 / len(names) for m in names}
    resolved = {resolve_metric(k, "weight metric"): float(v) for k, v in weights.items()}
    for name, w in resolved.items():
        if name not in names:
            raise ParseError(f"weight on {name!r}, which is not an objective ({', '.join(names)})")
        if not math.isfinite(w) or w < 0:
            raise ParseError(f"weight on {name!r} must be a finite number >= 0, got {w}")
    total = sum(resolved.values())
    if total <= 0:
        raise ParseError("weights sum to 0: give at least one objective a positive weight")
    return {m: resolved.get(m, 0.0) / total for m in names}


# ------------------------------------------------------------------ documentation


def markdown_table() -> str:
    """The catalog as the Markdown table ``docs/selection.md`` shows (a test keeps the two equal)."""
    lines = ["| metric | unit | better | fairness | needs baseline | read from | description |",
             "|---|---|---|---|---|---|---|"]
    for m in METRICS:
        lines.append(f"| `{m.name}` | {m.unit} | {m.direction} | {'yes' if m.fairness else 'no'} | "
                     f"{'yes' if m.vs_baseline else 'no'} | `{m.source}` | {m.description} |")
    return "\n".join(lines)
