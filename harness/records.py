"""Outputs: frozen dataclasses with units in their field names.

A value that could not be measured is ``None`` and its sibling ``*_unavailable_reason``
says why. These records are what the store persists and what JSON, cards and plots
are rendered from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


def to_dict(record: Any) -> dict[str, Any]:
    """Recursively convert a record (or list / dict of records) to plain JSON types."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_dict(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, dict):
        return {str(k): to_dict(v) for k, v in record.items()}
    if isinstance(record, list | tuple):
        return [to_dict(v) for v in record]
    return record


@dataclass(frozen=True)
class SplitInfo:
    name: str
    n_samples: int
    per_class_counts: dict[str, int]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    class_names: list[str]
    input_shape: list[int]  # C, H, W
    splits: list[SplitInfo]
    under_represented: list[str]
    preprocessing: dict[str, Any]
    description: str


@dataclass(frozen=True)
class ArtifactInfo:
    """What the exported file really contains, read back from the file itself."""

    path: str
    format: str  # "onnx" | "torch.export"
    file_mb: float
    n_weights: int
    weight_sparsity: float  # fraction of exact zeros over all conv / linear weights
    layer_sparsity: dict[str, float]
    n_quantized_nodes: int  # QuantizeLinear + DequantizeLinear nodes
    precision: str
    sha256: str


@dataclass(frozen=True)
class LatencyStats:
    """Per-query latency at one batch size; percentiles by nearest rank."""

    batch_size: int
    n_samples: int
    n_warmup: int
    p50_ms: float
    p90_ms: float | None
    p99_ms: float | None
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    duration_s: float
    throughput_sps: float  # samples (images) per second = batch_size * queries / busy time
    percentile_method: str = "nearest-rank"
    p90_unavailable_reason: str | None = None
    p99_unavailable_reason: str | None = None
    threads: int | None = None
    profile: str = "standard"
    isolation: str = "process"


@dataclass(frozen=True)
class MemoryStats:
    artifact_mb: float
    peak_rss_mb: float | None
    peak_rss_unavailable_reason: str | None = None


@dataclass(frozen=True)
class EnergyStats:
    energy_per_inference_mj: float | None
    scope: str | None  # module | soc-rails | gpu-board | cpu-package | wall
    source: str | None
    unavailable_reason: str | None = None


@dataclass(frozen=True)
class AccuracyStats:
    """Accuracy of one artifact through one runtime on the evaluation split."""

    n_samples: int
    top1: float
    per_class_recall: dict[str, float | None]  # None: class absent from the evaluation split
    per_class_support: dict[str, int]
    worst_class_recall: float
    worst_class: str
    per_class_delta: dict[str, float | None] = field(default_factory=dict)  # vs dense baseline
    top1_delta: float | None = None
    worst_class_drop: float | None = None  # dense worst-class recall minus this one's
    # group attributes of the evaluation split: attribute -> level -> accuracy (None: no sample)
    per_group_accuracy: dict[str, dict[str, float | None]] = field(default_factory=dict)
    per_group_support: dict[str, dict[str, int]] = field(default_factory=dict)
    worst_group_accuracy: float | None = None
    worst_group: str | None = None  # "attribute=level"
    # attribute -> level -> accuracy minus the dense model's (same runtime); None: either undefined
    per_group_delta: dict[str, dict[str, float | None]] = field(default_factory=dict)
    # "attribute=level" with fewer than min_group_support evaluation samples (kept in every table, flagged)
    small_support_groups: list[str] = field(default_factory=list)
    min_group_support: int | None = None  # the threshold used (experiment key groups.min_support)


@dataclass(frozen=True)
class BiasStats:
    """Bias of a compressed artifact against the dense model (shared/research/metrics.md).

    Populations: the dense and compressed models of ``population_size`` seeds; with one
    seed the CIE is plain disagreement (``cie_plain_disagreement``). Intervals are 95%
    percentile bootstrap over evaluation samples; a delta whose interval holds 0 is not
    significant.
    """

    population_size: int
    cev: float | None  # Blakeney et al., reference-code definition (percent units)
    sde: float | None
    cev_dropped_classes: list[str]
    cev_ci: list[float] | None
    cie_fraction: float
    n_cie: int
    cie_plain_disagreement: bool
    cie_ci: list[float] | None
    cie_error_share: float | None  # share of the compressed population's errors that fall on CIE
    cie_class_rel_rep: dict[str, float | None]  # share of class in CIE / share in evaluation split
    ece: float  # top-label, 15 equal-width bins
    ece_sweep: float | None  # equal-mass monotonic sweep, p = 2
    uncertain_share: float  # predictions with top-1 probability below 0.9
    n_classes_hurt: int  # classes whose recall dropped more than top-1 did (disproportionate impact)
    susceptibility_auroc: float | None  # dense-population uncertainty as a predictor of CIE (Iofinova et al.)
    per_class_delta_ci: dict[str, list[float] | None]
    per_class_delta_significant: dict[str, bool]
    n_boot: int
    # Fields below were added after the first stored reports; defaults keep those loadable.
    cev_variant: str = "reference"  # "reference": percent², SDE in percent; "normalised": fractions (bias.cev_variant)
    # per-group accuracy delta (compressed − dense deployed model), keys "attribute=level" (intersections too)
    per_group_delta_ci: dict[str, list[float] | None] = field(default_factory=dict)  # 95 % bootstrap interval
    per_group_delta_significant: dict[str, bool] = field(default_factory=dict)  # False: interval holds 0 (or undefined)
    # CIE report (Hooker et al.): mean accuracy over each population, on the CIE and off it
    cie_accuracy_dense: float | None = None
    cie_accuracy_rest_dense: float | None = None
    cie_accuracy_compressed: float | None = None
    cie_accuracy_rest_compressed: float | None = None
    n_cie_compressed_correct: int | None = None  # CIEs whose compressed modal label is right
    cie_group_rel_rep: dict[str, float | None] = field(default_factory=dict)  # "attr=level": share in CIE / share overall
    # binary target only: population-mean FPR / FNR change per group, compressed − dense (fractions)
    per_group_fpr_delta: dict[str, float | None] = field(default_factory=dict)
    per_group_fnr_delta: dict[str, float | None] = field(default_factory=dict)
    # dense-population uncertain set (top-1 probability < 0.9) as a predictor of CIE (Iofinova et al.)
    susceptibility_precision: float | None = None  # |uncertain ∩ CIE| / |uncertain|
    susceptibility_recall: float | None = None  # |uncertain ∩ CIE| / |CIE|
    uncertain_share_by_class: dict[str, float | None] = field(default_factory=dict)  # by true class
    # Directional bias amplification A→T (Wang & Russakovsky 2021), deployed models, fractions in [−1, 1]:
    # attributes = level 1 of every binary group attribute, tasks = every class (one-hot; for a binary
    # target this equals the positive class with y_at over all rows); direction indicator y_at from training.
    bias_amp_a_to_t: float | None = None  # compressed model
    bias_amp_a_to_t_dense: float | None = None
    bias_amp_a_to_t_delta: float | None = None  # compressed − dense: > 0 means compression amplified the bias
    bias_amp_delta_by_attribute: dict[str, float | None] = field(default_factory=dict)  # "attr=level" -> delta
    bias_amp_indicator_split: str | None = None  # split whose labels set y_at: "train" (the spec) or "evaluation"
    bias_amp_unavailable_reason: str | None = None
    # Threshold calibration (Iofinova et al.), binary target: the compressed model predicts positive when its
    # logit margin z1 − z0 exceeds the k-th largest margin on the calibration split, k = its positive count.
    calibrated_threshold: float | None = None  # on z1 − z0; argmax is threshold 0
    calibrated_top1: float | None = None
    calibrated_worst_group_accuracy: float | None = None
    calibrated_worst_group: str | None = None
    positive_share_true: float | None = None  # share of positive labels in the evaluation split
    positive_share_predicted: float | None = None  # compressed model, argmax
    positive_share_calibrated: float | None = None  # compressed model, calibrated threshold
    calibrated_bias_amp_a_to_t: float | None = None
    calibrated_bias_amp_a_to_t_delta: float | None = None  # calibrated compressed − dense (argmax)
    threshold_calibration_unavailable_reason: str | None = None


@dataclass(frozen=True)
class OperatingPoint:
    """One deployable configuration: a variant's artifact, on a runtime, at a batch size."""

    point_id: str
    variant_id: str
    variant_name: str
    runtime: str
    batch_size: int
    prune_method: str  # none | magnitude | channel
    prune_amount: float  # requested sparsity or channel ratio (0 for dense)
    precision: str  # fp32 | int8
    status: str  # ok | failed
    error: str | None = None
    artifact: ArtifactInfo | None = None
    accuracy: AccuracyStats | None = None
    latency: LatencyStats | None = None
    memory: MemoryStats | None = None
    energy: EnergyStats | None = None
    bias: BiasStats | None = None
    on_pareto_front: bool = False

    def metric(self, name: str) -> float | None:
        """Flat metric lookup used by objectives: ``p50_ms``, ``top1``, ``worst_class_recall`` ..."""
        return flat_metrics(self).get(name)


def flat_metrics(point: OperatingPoint) -> dict[str, float | None]:
    acc, lat, mem, en, art, bias = point.accuracy, point.latency, point.memory, point.energy, point.artifact, point.bias
    return {
        "cev": bias.cev if bias else None,
        "sde": bias.sde if bias else None,
        "cie_fraction": bias.cie_fraction if bias else None,
        "ece": bias.ece if bias else None,
        "n_classes_hurt": float(bias.n_classes_hurt) if bias else None,
        "top1": acc.top1 if acc else None,
        "worst_class_recall": acc.worst_class_recall if acc else None,
        "worst_class_drop": acc.worst_class_drop if acc else None,
        "worst_group_accuracy": acc.worst_group_accuracy if acc else None,
        "top1_delta": acc.top1_delta if acc else None,
        "p50_ms": lat.p50_ms if lat else None,
        "p90_ms": lat.p90_ms if lat else None,
        "p99_ms": lat.p99_ms if lat else None,
        "mean_ms": lat.mean_ms if lat else None,
        "throughput_sps": lat.throughput_sps if lat else None,
        "peak_rss_mb": mem.peak_rss_mb if mem else None,
        "artifact_mb": art.file_mb if art else None,
        "sparsity": art.weight_sparsity if art else None,
        "energy_per_inference_mj": en.energy_per_inference_mj if en else None,
    }


def point_from_dict(d: dict[str, Any]) -> OperatingPoint:
    """Rebuild an :class:`OperatingPoint` from :func:`to_dict` output (the store's ``point_json``)."""
    nested = {
        "artifact": ArtifactInfo, "accuracy": AccuracyStats, "latency": LatencyStats, "memory": MemoryStats,
        "energy": EnergyStats, "bias": BiasStats,
    }
    fields = {f.name for f in dataclasses.fields(OperatingPoint)}
    values = {k: v for k, v in d.items() if k in fields}
    for key, cls in nested.items():
        if values.get(key) is not None:
            known = {f.name for f in dataclasses.fields(cls)}
            values[key] = cls(**{k: v for k, v in values[key].items() if k in known})
    return OperatingPoint(**values)


@dataclass(frozen=True)
class PolicyChoice:
    """What one selection policy picked among the candidates, and why."""

    policy: str  # constraint-first | weighted-utility | accuracy-only
    point_id: str | None
    reason: str
    binding_constraints: list[str] = field(default_factory=list)  # constraints that ruled out a better point
    utility: float | None = None  # weighted-utility score of the pick (normalised axes), else None


@dataclass(frozen=True)
class Selection:
    """The chosen operating point and why, beside the accuracy-only choice.

    ``point_id`` is the constraint-first choice (the run's decision); ``policies`` holds every
    policy's pick side by side, and ``knee_point_id`` the knee of the two-objective front
    (latency vs top-1) when one exists.
    """

    point_id: str | None
    reason: str
    accuracy_only_point_id: str | None
    accuracy_only_reason: str
    fairness_changed_choice: bool
    batch_size: int
    constraints: dict[str, float]
    policies: list[PolicyChoice] = field(default_factory=list)
    knee_point_id: str | None = None
    knee_reason: str | None = None


@dataclass(frozen=True)
class EnvironmentInfo:
    cpu_model: str | None
    physical_cores: int | None
    logical_cores: int | None
    cpu_flags: list[str]
    os: str
    python: str
    library_versions: dict[str, str | None]
    git_commit: str | None
    git_commit_unavailable_reason: str | None
    hostname: str


@dataclass(frozen=True)
class RunReport:
    run_id: str
    experiment_name: str
    started_at: str
    finished_at: str
    status: str  # ok | partial | failed
    dataset: DatasetInfo
    model_name: str
    baseline_variant_id: str
    points: list[OperatingPoint]
    objectives: list[str]
    selection: Selection
    environment: EnvironmentInfo
    run_dir: str
    card_path: str | None
    plot_path: str | None
    store: str
    n_failed: int
    notes: list[str] = field(default_factory=list)
    cie_gallery_path: str | None = None
    population: int = 1
    schema_version: int = SCHEMA_VERSION


def report_from_dict(d: dict[str, Any]) -> RunReport:
    """Rebuild a :class:`RunReport` from :func:`to_dict` output (the store's ``report_json``)."""
    known = {f.name for f in dataclasses.fields(RunReport)}
    values = {k: v for k, v in d.items() if k in known}
    ds = dict(values["dataset"])
    ds["splits"] = [SplitInfo(**sp) for sp in ds["splits"]]
    values["dataset"] = DatasetInfo(**ds)
    values["points"] = [point_from_dict(p) for p in values["points"]]
    sel = {k: v for k, v in values["selection"].items() if k in {f.name for f in dataclasses.fields(Selection)}}
    sel["policies"] = [PolicyChoice(**c) for c in sel.get("policies", [])]
    values["selection"] = Selection(**sel)
    values["environment"] = EnvironmentInfo(**values["environment"])
    return RunReport(**values)
