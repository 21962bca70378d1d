"""Outputs: frozen dataclasses with units in their field names.

A value that could not be measured is ``None`` and its sibling ``*_unavailable_reason``
says why. These records are what the store persists and what JSON, cards and plots
are rendered from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from harness.metric_catalog import read_metrics

#: version of the RunReport record (report.json, the store's report_json); bumped when a field is added,
#: renamed or changes meaning, with a step in REPORT_MIGRATIONS that brings the older record up to date
SCHEMA_VERSION = 2


def to_dict(record: Any) -> Any:
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
    # group attribute -> level names (CelebA attributes, manifest columns, npz groups_<name>); {} without groups
    group_levels: dict[str, list[str]] = field(default_factory=dict)


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
    # MLPerf scenario that produced these numbers and the figure it is judged by (None: stored
    # before scenarios were recorded)
    scenario: str | None = None  # single-stream | multi-stream | offline
    headline_metric: str | None = None  # p90_ms | p99_ms | throughput_sps
    # convergence: "converged" or "unstable" (with the reason); None: stored before the check existed
    stability: str | None = None
    unstable_reason: str | None = None
    cv: float | None = None  # std / mean of the measured samples
    robust_cv: float | None = None  # 1.4826 x MAD / median: the spread the stability verdict judges
    window_size: int | None = None  # samples per convergence window
    window_p50_ms: list[float] = field(default_factory=list)  # p50 of each of the last three windows
    # percentile bootstrap of the nearest-rank p50 / p90 (seeded; None when withheld)
    p50_ci_ms: list[float] | None = None
    p90_ci_ms: list[float] | None = None
    ci_level: float | None = None
    bootstrap_resamples: int | None = None
    bootstrap_seed: int | None = None
    # the timed path is the scored path: sha256 of the file the measuring process loaded, and
    # the timed outputs against the accuracy pass's on the first inputs of the batch
    timed_artifact_sha256: str | None = None
    output_check_n: int | None = None
    output_check_argmax_agreement: float | None = None
    output_check_max_abs_diff: float | None = None
    output_check_unavailable_reason: str | None = None


@dataclass(frozen=True)
class MemoryStats:
    """The memory stack of one (artifact, runtime), in MiB; a value that cannot be read is None and
    ``unavailable_reasons[field]`` says why.

    RSS figures come from the measuring process's /proc/self/status: ``rss_before_load_mb``
    (interpreter and harness), ``rss_after_load_mb`` (plus runtime and loaded artifact), and
    ``peak_rss_mb`` (VmHWM at the end, after every batch size); ``inference_rss_growth_mb`` is
    peak minus after-load: activations, workspace and allocator arenas grown while inferring,
    at the largest batch measured.
    """

    artifact_mb: float
    peak_rss_mb: float | None
    peak_rss_unavailable_reason: str | None = None
    weights_mb: float | None = None  # bytes of the stored weights (ONNX initializers)
    rss_before_load_mb: float | None = None
    rss_after_load_mb: float | None = None
    runtime_load_mb: float | None = None  # after load - before load
    inference_rss_growth_mb: float | None = None  # peak - after load
    activation_mb: float | None = None  # a runtime's own activation/workspace figure (TensorRT device_memory_size)
    peak_gpu_mb: float | None = None
    unavailable_reasons: dict[str, str] = field(default_factory=dict)
    # computed, not a file that exists: the initializers stored as sparse_weights_format
    # ("bitmask+values": 1 bit per element + the non-zero values; dense where smaller)
    sparse_weights_mb: float | None = None
    sparse_weights_format: str | None = None
    process_gpu_mb: float | None = None  # NVML usedGpuMemory of this pid: largest reading after load / each batch
    system_memory_delta_mb: float | None = None  # unified memory: MemAvailable before load - its lowest reading


@dataclass(frozen=True)
class DeviceState:
    """Device conditions around one timed loop (read at its start and end); see harness.measure.device_state."""

    cpu_governors: dict[str, str]
    cpu_freq_mhz: dict[str, float]
    cpu_freq_after_mhz: dict[str, float]
    cpu_max_freq_mhz: dict[str, float]
    temperatures_c: dict[str, float]
    temperatures_after_c: dict[str, float]
    gpu: dict[str, Any]
    gpu_after: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    unavailable_reasons: dict[str, str] = field(default_factory=dict)
    # Jetson: nvpmodel mode at the start, the target profile's default mode, and whether
    # jetson_clocks pinned the clocks (min == max on every online CPU and the GPU); None: not read
    power_mode: str | None = None
    power_mode_id: int | None = None
    expected_power_mode: str | None = None
    jetson_clocks_active: bool | None = None
    jetson_clocks: dict[str, Any] = field(default_factory=dict)  # source, power_mode_source, clocks (MHz)
    # throttling at the loop's start or end (NVML clock-event reasons, sysfs thermal trips and
    # clock-capping coolers), each reason suffixed @start / @end; None: nothing readable said
    throttled: bool | None = None
    throttle_reasons: list[str] = field(default_factory=list)
    # measure.lock_clocks: whether the lock was taken (None: not asked for) and how; clock_lock holds
    # method (nvml | nvidia-smi | jetson_clocks), gpu_clock_mhz and restored (None: nothing to restore)
    clocks_locked: bool | None = None
    clock_lock: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnergyStats:
    """Energy of the measured (post-warm-up) queries of one point, labelled with its scope.

    ``energy_per_inference_mj`` is gross: everything the meter's scope drew. Dynamic energy
    subtracts the idle baseline (idle power x window duration), measured with the same meter
    in the measuring process before the runtime was loaded. ``power_trace_*`` is the window's
    total power over time (seconds from the window start), from sampling meters only, thinned
    to at most 2000 points; counter meters (RAPL, the NVML energy counter) leave it empty.
    """

    energy_per_inference_mj: float | None
    scope: str | None  # module | soc-rails | gpu-board | cpu-package | wall
    source: str | None
    unavailable_reason: str | None = None
    meter: str | None = None  # rapl | nvml | jetson | tegrastats | external | null
    dynamic_energy_per_inference_mj: float | None = None
    dynamic_unavailable_reason: str | None = None
    idle_power_w: float | None = None
    idle_window_s: float | None = None
    window_s: float | None = None
    average_power_w: float | None = None
    energy_by_rail_j: dict[str, float] = field(default_factory=dict)
    sample_period_s: float | None = None  # None: a counter read at the window edges
    n_power_samples: int | None = None
    warnings: list[str] = field(default_factory=list)
    power_trace_t_s: list[float] = field(default_factory=list)
    power_trace_w: list[float] = field(default_factory=list)


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
    top5: float | None = None  # None with 5 classes or fewer (it would be 1 by construction)


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
class EngineInfo:
    """What a TensorRT engine runs: its build plan, and counts from its inspector and build log."""

    trt_version: str
    device: str
    cache_key: str
    cache_hit: bool
    source_format: str  # the variant's file the engine was built from: onnx | onnx-trt-qdq
    network_flags: list[str]
    builder_flags: list[str]
    engine_mb: float
    n_layers: int | None  # None: the engine inspector gave no per-layer report
    n_int8_layers: int | None
    n_fp16_layers: int | None
    n_sparse_layers: int | None  # layers whose tactic is sparse or that the build log says picked sparse
    n_sparse_eligible: int | None  # layers the build log calls eligible for sparse math; None: no such line


@dataclass(frozen=True)
class GpuTiming:
    """trtexec's per-query split on a GPU runtime, each figure labelled (ms, medians unless named).

    ``compute_ms`` is CUDA-event time of the execution alone (trtexec "GPU Compute Time");
    ``e2e_ms`` is H2D + compute + D2H from CUDA events (trtexec "Latency"); ``enqueue_ms``
    is host time to launch the work. The host-clock latency of the same queries is the
    point's LatencyStats. ``pipelined_throughput_sps`` comes from a separate run that keeps
    ``pipeline_depth`` queries in flight, with its own wall time.
    """

    n_queries: int
    compute_ms: float
    e2e_ms: float
    h2d_ms: float
    d2h_ms: float
    enqueue_ms: float | None
    compute_p90_ms: float | None
    compute_cv: float | None
    pipelined_throughput_sps: float | None
    pipeline_depth: int | None
    cuda_graphs: bool
    warnings: list[str] = field(default_factory=list)
    unavailable_reasons: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OperatingPoint:
    """One deployable configuration: a variant's artifact, on a runtime, at a batch size."""

    point_id: str
    variant_id: str
    variant_name: str
    runtime: str
    batch_size: int
    prune_method: str  # none | magnitude | channel
    prune_amount: float | None  # requested sparsity or channel ratio (0 for dense); None: not known (harness bench)
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
    engine: EngineInfo | None = None  # TensorRT points only
    device_state: DeviceState | None = None
    gpu_timing: GpuTiming | None = None
    recipe: str | None = None  # how the variant was made, in words (None in reports written before it existed)

    def metric(self, name: str) -> float | None:
        """Flat metric lookup used by objectives: ``p50_ms``, ``top1``, ``worst_class_recall`` ..."""
        return flat_metrics(self).get(name)


def flat_metrics(point: OperatingPoint) -> dict[str, float | None]:
    """Every metric of :mod:`harness.metric_catalog`, read from ``point`` (None: not measured)."""
    return read_metrics(point)


def point_from_dict(d: dict[str, Any]) -> OperatingPoint:
    """Rebuild an :class:`OperatingPoint` from :func:`to_dict` output (the store's ``point_json``)."""
    nested = {
        "artifact": ArtifactInfo, "accuracy": AccuracyStats, "latency": LatencyStats, "memory": MemoryStats,
        "energy": EnergyStats, "bias": BiasStats, "device_state": DeviceState, "gpu_timing": GpuTiming,
        "engine": EngineInfo,
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
    target: str | None = None  # the device profile the run was made for (targets/), if one was named
    license: str | None = None  # the experiment's [card] license (None: not given)
    base_model: str | None = None  # the model's file or checkpoint name (model_names.base_model_name); None: trained here
    schema_version: int = SCHEMA_VERSION


def _report_v1_to_v2(d: dict[str, Any]) -> dict[str, Any]:
    """Version 1 grew fields without a version bump (population, target, the CIE gallery; per point the
    recipe, top-5, engine, GPU timing, device state, bias): a field a version-1 record lacks was not
    recorded, so it takes the value that says so (None, or population 1)."""
    out = {"population": 1, "target": None, "cie_gallery_path": None, **d, "schema_version": 2}
    not_recorded = ("recipe", "engine", "gpu_timing", "device_state", "bias")
    out["points"] = [{**{k: None for k in not_recorded}, **p} for p in d.get("points", [])]
    return out


#: version -> the function taking a report dict of that version to the next
REPORT_MIGRATIONS = {1: _report_v1_to_v2}


def upgrade_report(d: dict[str, Any]) -> dict[str, Any]:
    """A stored report dict brought to :data:`SCHEMA_VERSION`; a newer one is refused."""
    from harness.errors import StoreError

    version = int(d.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise StoreError(f"report of run {d.get('run_id')} has schema version {version}, written by a newer "
                         f"harness; this one reads up to version {SCHEMA_VERSION}: upgrade harness")
    while version < SCHEMA_VERSION:
        d = REPORT_MIGRATIONS[version](d)
        version += 1
    return d


def report_from_dict(d: dict[str, Any]) -> RunReport:
    """Rebuild a :class:`RunReport` from :func:`to_dict` output (the store's ``report_json``), of this or
    an older schema version."""
    d = upgrade_report(d)
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
