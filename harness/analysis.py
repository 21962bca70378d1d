"""Population-level analysis after a sweep: bias records per point and the CIE audit.

A *population* of a variant is its primary model (the deployed, timed one, scored on each
runtime) plus the models compressed the same way from the other seeds (scored on one
runtime). Bias metrics compare a variant's population with the dense population.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from harness.data.base import Dataset
from harness.errors import ConfigError
from harness.records import BiasStats, OperatingPoint


@dataclass
class Populations:
    logits: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (variant_id, runtime) -> primary
    member_logits: dict[str, list[np.ndarray]] = field(default_factory=dict)  # variant name -> other seeds
    # (variant_id, runtime) -> primary's logits on the calibration split (binary targets: threshold calibration)
    calib_logits: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def stack(self, variant_id: str, name: str, runtime: str) -> np.ndarray | None:
        """``[K, N, C]`` logits: the primary on ``runtime`` first, then the other seeds; None if unscored."""
        primary = self.logits.get((variant_id, runtime))
        if primary is None:
            return None
        return np.stack([primary, *self.member_logits.get(name, [])])


def check_intersections(dataset: Dataset, pairs: list[list[str]]) -> None:
    """Raise a ConfigError naming ``groups.intersections`` when a pair names an attribute the data lacks."""
    known = sorted(dataset.evaluation.groups)
    for pair in pairs:
        for attr in pair:
            if attr not in dataset.evaluation.groups:
                raise ConfigError(
                    f"groups.intersections: {attr!r} is not a group attribute of {dataset.name} "
                    f"(attributes: {', '.join(known) or 'none'})"
                )


def evaluation_groups(dataset: Dataset, pairs: list[list[str]]) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """The evaluation split's group codes and level names, plus the requested intersections."""
    from harness.metrics.groups import with_intersections

    return with_intersections(dataset.evaluation.groups, dataset.group_levels, pairs)


def group_data(dataset: Dataset, pairs: list[list[str]]):
    """:class:`~harness.metrics.point_bias.GroupData` of the dataset (None without group attributes)."""
    from harness.metrics.point_bias import GroupData, binary_attributes

    if not dataset.evaluation.groups:
        return None
    codes, levels = evaluation_groups(dataset, pairs)
    binary = binary_attributes({a: levels[a] for a in dataset.evaluation.groups})
    train = {a: dataset.train.groups[a] for a in binary if a in dataset.train.groups}
    return GroupData(codes, levels, binary, dataset.train.y, train)


def attach_bias(points: list[OperatingPoint], pops: Populations, dense_id: str, dataset: Dataset, *,
                cev_variant: str = "reference", n_boot: int | None = None,
                intersections: list[list[str]] | None = None) -> list[OperatingPoint]:
    """Every completed point with a :class:`~harness.records.BiasStats` against the dense population."""
    from harness.metrics.point_bias import N_BOOT, bias_stats

    y, names = dataset.evaluation.y, dataset.class_names
    groups = group_data(dataset, intersections or [])
    cache: dict[tuple[str, str], BiasStats] = {}
    out = []
    for p in points:
        key = (p.variant_id, p.runtime)
        comp = pops.stack(p.variant_id, p.variant_name, p.runtime)
        dense = pops.stack(dense_id, "dense", p.runtime)
        if p.status == "ok" and comp is not None and dense is not None:
            if key not in cache:
                cache[key] = bias_stats(
                    y, dense.argmax(2), comp.argmax(2), comp[0], names, dense_logits=dense, cev_variant=cev_variant,
                    n_boot=n_boot or N_BOOT, groups=groups, calib_logits=pops.calib_logits.get(key),
                    calib_y=dataset.calibration.y,
                )
            p = replace(p, bias=cache[key])
        out.append(p)
    return out


def write_audit(
    variants, runtimes: list[str], pops: Populations, dataset: Dataset, run_dir: Path, chosen: OperatingPoint | None
) -> Path | None:
    """CIE audit lists (CSV, one per compressed variant and runtime) and an image grid for the chosen point
    (when matplotlib, the plots extra, is installed)."""
    from harness.metrics.point_bias import cie_audit_rows
    from harness.report.figures import plots_available
    from harness.report.gallery import plot_cie_gallery, write_csv

    ev, names = dataset.evaluation, dataset.class_names
    groups = {a: (ev.groups[a], dataset.group_levels.get(a, [])) for a in ev.groups}
    dense_id = variants[0].variant_id
    gallery = None
    for v in variants[1:]:
        for runtime in runtimes:
            comp, dense = pops.stack(v.variant_id, v.name, runtime), pops.stack(dense_id, "dense", runtime)
            if comp is None or dense is None:
                continue
            rows = cie_audit_rows(ev.y, ev.index, dense.argmax(2), comp.argmax(2), names, groups)
            write_csv(run_dir / "audit" / f"cie-{v.name}@{runtime}.csv", rows)
            if chosen is not None and (chosen.variant_id, chosen.runtime) == (v.variant_id, runtime) and rows \
                    and plots_available():
                gallery = plot_cie_gallery(rows, ev.x, run_dir / "cie_gallery.png", title=f"CIE: {v.name} on {runtime}")
    return gallery
