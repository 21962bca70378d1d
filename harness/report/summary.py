"""The machine-readable view of a run printed by ``harness run --json``.

Field names are a contract with scripts and dashboards: add fields freely, never
rename or remove one. Every metric of :mod:`harness.metric_catalog` is a field under its
catalog name, read by the catalog (the same values objectives and constraints see).
"""

from __future__ import annotations

from typing import Any

from harness.metric_catalog import read_metrics
from harness.records import OperatingPoint, RunReport, to_dict


def point_summary(p: OperatingPoint) -> dict[str, Any]:
    acc, lat, art, en, bias = p.accuracy, p.latency, p.artifact, p.energy, p.bias
    m = read_metrics(p)
    summary = {
        "point_id": p.point_id,
        "variant_id": p.variant_id,
        "variant_name": p.variant_name,
        "runtime": p.runtime,
        "prune_method": p.prune_method,
        "prune_amount": p.prune_amount,
        "sparsity": m["sparsity"],  # measured from the artifact
        "precision": p.precision,
        "recipe": p.recipe,  # how the variant was made, in words
        "batch_size": p.batch_size,
        "top1": m["top1"],
        "worst_class_recall": m["worst_class_recall"],
        "worst_class": acc.worst_class if acc else None,
        "per_class_recall": acc.per_class_recall if acc else None,
        "per_class_delta": acc.per_class_delta if acc else None,
        "per_group_accuracy": acc.per_group_accuracy if acc else None,
        "worst_group_accuracy": m["worst_group_accuracy"],
        "worst_group": acc.worst_group if acc else None,
        "p50_ms": m["p50_ms"],
        "p90_ms": m["p90_ms"],
        "p99_ms": m["p99_ms"],
        "mean_ms": m["mean_ms"],
        "n_samples": lat.n_samples if lat else None,
        "throughput_sps": m["throughput_sps"],
        "peak_rss_mb": m["peak_rss_mb"],
        "artifact_mb": m["artifact_mb"],
        "n_quantized_nodes": art.n_quantized_nodes if art else None,
        "energy_per_inference_mj": m["energy_per_inference_mj"],
        "energy_unavailable_reason": (en.unavailable_reason if en else "not measured: the operating point failed")
        if not en or en.energy_per_inference_mj is None
        else None,
        "population_size": bias.population_size if bias else None,
        "cev": m["cev"],
        "sde": m["sde"],
        "cie_fraction": m["cie_fraction"],
        "ece": m["ece"],
        "n_classes_hurt": m["n_classes_hurt"],
        "susceptibility_auroc": bias.susceptibility_auroc if bias else None,
        "per_class_delta_significant": bias.per_class_delta_significant if bias else None,
        "cev_variant": bias.cev_variant if bias else None,
        "per_group_delta": acc.per_group_delta if acc else None,
        "per_group_delta_significant": bias.per_group_delta_significant if bias else None,
        "small_support_groups": {g: _support(acc, g) for g in acc.small_support_groups} if acc else None,
        "susceptibility_precision": bias.susceptibility_precision if bias else None,
        "susceptibility_recall": bias.susceptibility_recall if bias else None,
        "cie_error_share": bias.cie_error_share if bias else None,
        "bias_amp_a_to_t": bias.bias_amp_a_to_t if bias else None,
        "bias_amp_a_to_t_delta": bias.bias_amp_a_to_t_delta if bias else None,
        "bias_amp_unavailable_reason": bias.bias_amp_unavailable_reason if bias else None,
        "calibrated_top1": m["calibrated_top1"],
        "calibrated_worst_group_accuracy": bias.calibrated_worst_group_accuracy if bias else None,
        "calibrated_bias_amp_a_to_t_delta": bias.calibrated_bias_amp_a_to_t_delta if bias else None,
        "threshold_calibration_unavailable_reason": bias.threshold_calibration_unavailable_reason if bias else None,
        "on_pareto_front": p.on_pareto_front,
        "status": p.status,
        "error": p.error,
    }
    # the catalog's metrics without a field above (drops vs the dense baseline, top-5, bias amplification)
    summary.update({name: value for name, value in m.items() if name not in summary})
    return summary


def _support(acc, key: str) -> int | None:
    """Evaluation support of ``"attribute=level"`` (levels may themselves contain ``=``)."""
    attr, _, level = key.partition("=")
    return acc.per_group_support.get(attr, {}).get(level)


def run_summary(report: RunReport) -> dict[str, Any]:
    return {
        "schema_version": report.schema_version,
        "run_id": report.run_id,
        "experiment": report.experiment_name,
        "status": report.status,
        "n_failed": report.n_failed,
        "store": report.store,
        "run_dir": report.run_dir,
        "card_path": report.card_path,
        "plot_path": report.plot_path,
        "cie_gallery_path": report.cie_gallery_path,
        "population": report.population,
        "objectives": report.objectives,
        "selection": to_dict(report.selection),
        "dataset": {
            "name": report.dataset.name,
            "class_names": report.dataset.class_names,
            "under_represented": report.dataset.under_represented,
            "group_levels": report.dataset.group_levels,
            "splits": {s.name: s.n_samples for s in report.dataset.splits},
        },
        "points": [point_summary(p) for p in report.points],
    }
