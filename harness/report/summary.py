"""The machine-readable view of a run printed by ``harness run --json``.

Field names are a contract with scripts and dashboards: add fields freely, never
rename or remove one.
"""

from __future__ import annotations

from typing import Any

from harness.records import OperatingPoint, RunReport, to_dict


def point_summary(p: OperatingPoint) -> dict[str, Any]:
    acc, lat, mem, en, art, bias = p.accuracy, p.latency, p.memory, p.energy, p.artifact, p.bias
    return {
        "point_id": p.point_id,
        "variant_id": p.variant_id,
        "variant_name": p.variant_name,
        "runtime": p.runtime,
        "prune_method": p.prune_method,
        "prune_amount": p.prune_amount,
        "sparsity": art.weight_sparsity if art else None,  # measured from the artifact
        "precision": p.precision,
        "recipe": p.recipe,  # how the variant was made, in words
        "batch_size": p.batch_size,
        "top1": acc.top1 if acc else None,
        "worst_class_recall": acc.worst_class_recall if acc else None,
        "worst_class": acc.worst_class if acc else None,
        "per_class_recall": acc.per_class_recall if acc else None,
        "per_class_delta": acc.per_class_delta if acc else None,
        "per_group_accuracy": acc.per_group_accuracy if acc else None,
        "worst_group_accuracy": acc.worst_group_accuracy if acc else None,
        "worst_group": acc.worst_group if acc else None,
        "p50_ms": lat.p50_ms if lat else None,
        "p90_ms": lat.p90_ms if lat else None,
        "p99_ms": lat.p99_ms if lat else None,
        "mean_ms": lat.mean_ms if lat else None,
        "n_samples": lat.n_samples if lat else None,
        "throughput_sps": lat.throughput_sps if lat else None,
        "peak_rss_mb": mem.peak_rss_mb if mem else None,
        "artifact_mb": art.file_mb if art else None,
        "n_quantized_nodes": art.n_quantized_nodes if art else None,
        "energy_per_inference_mj": en.energy_per_inference_mj if en else None,
        "energy_unavailable_reason": (en.unavailable_reason if en else "not measured: the operating point failed")
        if not en or en.energy_per_inference_mj is None
        else None,
        "population_size": bias.population_size if bias else None,
        "cev": bias.cev if bias else None,
        "sde": bias.sde if bias else None,
        "cie_fraction": bias.cie_fraction if bias else None,
        "ece": bias.ece if bias else None,
        "n_classes_hurt": bias.n_classes_hurt if bias else None,
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
        "calibrated_top1": bias.calibrated_top1 if bias else None,
        "calibrated_worst_group_accuracy": bias.calibrated_worst_group_accuracy if bias else None,
        "calibrated_bias_amp_a_to_t_delta": bias.calibrated_bias_amp_a_to_t_delta if bias else None,
        "threshold_calibration_unavailable_reason": bias.threshold_calibration_unavailable_reason if bias else None,
        "on_pareto_front": p.on_pareto_front,
        "status": p.status,
        "error": p.error,
    }


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
