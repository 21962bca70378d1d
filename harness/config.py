"""Input specs: what an experiment asks for, and what each value may be on its own.

Every model forbids unknown keys, so a typo in ``experiment.toml`` is an error naming
the key. These models check types, ranges and the coherence of one experiment's values;
names that something else defines (datasets, models, runtimes, energy meters, target
profiles, variant names for ``apply_to``) are checked by :mod:`harness.experiment`, which
also reads and merges experiment files. This module imports nothing of the harness but
leaf modules, so every other module may import it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness.metric_catalog import LATENCY_METRICS, normalise_weights, parse_constraint, parse_objective
from harness.model_names import is_fixed_artifact, source_kind

Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]


class Spec(BaseModel):
    # inf and nan are never a usable setting (lr = inf trains to nan): refused like any impossible value
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ---------------------------------------------------------------------------- data and model


class SplitSpec(Spec):
    """Fractions of the dataset for each split. Disjoint, stratified, seeded."""

    train: Annotated[float, Field(gt=0, lt=1)] = 0.5
    calibration: Annotated[float, Field(gt=0, lt=1)] = 0.1
    evaluation: Annotated[float, Field(gt=0, lt=1)] = 0.4

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSpec:
        total = self.train + self.calibration + self.evaluation
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + calibration + evaluation must sum to 1, got {total:g}")
        return self


class LongTailSpec(Spec):
    """Keep only ``keep_fraction`` of the *training* images of ``classes``."""

    classes: list[int] = Field(min_length=1)
    keep_fraction: Annotated[float, Field(gt=0, le=1)] = 0.1


class DatasetSpec(Spec):
    """Which dataset, where its files are, and how its images are preprocessed.

    ``path`` is the root directory (cifar10, cifar100, imagefolder, celeba) or the file
    (manifest CSV, npz); ``target`` is CelebA's target attribute or the manifest's label
    column; ``group_attributes`` are carried into every split (CelebA attributes, manifest
    columns, npz ``groups_<name>`` arrays); ``channels`` converts every image to grey (1) or
    colour (3), ``None`` keeps the dataset's own. Which keys a dataset needs or refuses is
    checked by its loader, which names the key.
    """

    name: str = "digits"
    path: str | None = None
    target: str | None = None
    group_attributes: list[str] = Field(default_factory=list)
    channels: Literal[1, 3] | None = None
    image_size: Positive | None = 32
    mean: float = 0.5
    std: Annotated[float, Field(gt=0)] = 0.5
    split: SplitSpec = SplitSpec()
    long_tail: LongTailSpec | None = None

    @field_validator("group_attributes")
    @classmethod
    def _distinct_names(cls, v: list[str]) -> list[str]:
        repeated = sorted({a for a in v if v.count(a) > 1})
        if repeated or any(not a for a in v):
            raise ValueError(f"names must be distinct and non-empty, got {v}")
        return v


class ModelSpec(Spec):
    """Where the baseline comes from (see :mod:`harness.models.sources`).

    ``name``: a zoo model (``small-cnn``, ``resnet20``, ``resnet56``, ``resnet18``, ``mobilenet-v2``),
    ``torchvision:NAME`` / ``timm:NAME``, a user's ``package.module:factory``, or a ``.pt2``
    (torch.export) / ``.onnx`` file deployed as it is. ``checkpoint``: a state_dict loaded with
    ``weights_only=True`` into the built model instead of training it. ``channels``: a zoo model's
    widths; ``options``: keyword arguments for the factory (``width`` for mobilenet-v2, ``stem``
    for resnet18, anything a user's factory takes).
    """

    name: str = "small-cnn"
    channels: list[Positive] | None = None
    options: dict[str, StrictBool | StrictInt | float | str] = Field(default_factory=dict)
    checkpoint: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> ModelSpec:
        kind = source_kind(self.name)
        if is_fixed_artifact(self.name) and (self.checkpoint or self.options or self.channels):
            raise ValueError(f"a {Path(self.name).suffix} file carries its own weights and architecture: "
                             "remove checkpoint / options / channels")
        if kind != "zoo" and self.channels is not None:
            raise ValueError(f"channels sets a zoo model's widths; {self.name} is a {kind} model (use options)")
        return self

    @property
    def fixed_weights(self) -> bool:
        """True when the weights come from a file (a checkpoint, .pt2 or .onnx): nothing to train."""
        return self.checkpoint is not None or is_fixed_artifact(self.name)


class TrainSpec(Spec):
    epochs: Positive = 10
    batch_size: Positive = 64
    lr: Annotated[float, Field(gt=0)] = 2e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4


# ---------------------------------------------------------------------------- compression


class _FinetuneSpec(Spec):
    """Fine-tuning after pruning (masks held). ``distill``: knowledge distillation from the dense model.

    The loss is ``alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE``
    (Hinton et al.); Blakeney et al. report that distilling from the dense model reduces the
    bias that pruning adds to under-represented classes. ``bn_recalibration``: re-estimate every
    BatchNorm's running statistics on the training split once the weights are pruned ("adaptive
    BN", Li et al. 2020), before fine-tuning starts.
    """

    finetune_epochs: Annotated[int, Field(ge=0)] = 2
    finetune_lr: Annotated[float, Field(gt=0)] = 5e-4
    bn_recalibration: bool = True  # re-estimate BatchNorm statistics after pruning, before fine-tuning
    distill: bool = False
    temperature: Annotated[float, Field(gt=0)] = 4.0
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.5

    @model_validator(mode="after")
    def _distill_needs_epochs(self) -> _FinetuneSpec:
        if self.distill and self.finetune_epochs == 0:
            raise ValueError("distill = true distils during fine-tuning: finetune_epochs must be at least 1")
        return self


class MagnitudePruneSpec(_FinetuneSpec):
    """Unstructured magnitude (L1) pruning, made permanent before export.

    ``scope``: one threshold over all conv / linear weights (``global``) or the same fraction in
    every layer (``layer``). ``schedule``: ``one-shot`` (prune, then fine-tune) or ``gradual``
    (Zhu & Gupta's cubic schedule over ``steps`` pruning steps spread through fine-tuning).
    """

    method: Literal["magnitude"]
    sparsity: list[Fraction] = Field(min_length=1)
    scope: Literal["global", "layer"] = "global"
    schedule: Literal["one-shot", "gradual"] = "one-shot"
    steps: Annotated[int, Field(ge=2, le=100)] = 4

    @model_validator(mode="after")
    def _gradual_needs_epochs(self) -> MagnitudePruneSpec:
        if self.schedule == "gradual" and self.finetune_epochs == 0:
            raise ValueError("schedule = 'gradual' fine-tunes between pruning steps: finetune_epochs must be at least 1")
        return self


class ChannelPruneSpec(_FinetuneSpec):
    """Structured channel pruning with torch-pruning (L2 group importance, last layer kept)."""

    method: Literal["channel"]
    ratio: list[Fraction] = Field(min_length=1)
    round_to: Positive = 8


class SemiStructuredPruneSpec(_FinetuneSpec):
    """2:4 semi-structured sparsity for sparse tensor cores (Ampere and newer, Jetson Orin).

    In every group of 4 consecutive weights along the reduction (input-channel) axis the 2
    smallest magnitudes are zeroed, for each Conv / Linear layer whose reduction size is a
    multiple of 4; the mask is held while fine-tuning and then made permanent.
    """

    method: Literal["2:4"]


PruneSpec = Annotated[
    MagnitudePruneSpec | ChannelPruneSpec | SemiStructuredPruneSpec, Field(discriminator="method")
]


class QuantSpec(Spec):
    """Post-training quantization of the exported ONNX, applied to the variants in ``apply_to``.

    ``precision = "int8"`` with ``method = "static"`` (calibrated QDQ) or ``"dynamic"``
    (onnxruntime's quantize_dynamic); ``precision = "fp16"`` converts weights and compute to
    float16 and keeps float32 inputs and outputs. ``target = "tensorrt"`` writes the static int8
    file with TensorRT's placement (symmetric, Q/DQ on the inputs of conv / gemm and residual
    adds) as its own artifact format, ``onnx-trt-qdq``. ``activation_type = "auto"`` picks uint8
    activations on x86 (onnxruntime's fused int8 path there) and int8 elsewhere.
    """

    precision: Literal["int8", "fp16"] = "int8"
    method: Literal["static", "dynamic"] = "static"
    target: Literal["cpu", "tensorrt"] = "cpu"
    calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    per_channel: bool = True
    activation_type: Literal["auto", "int8", "uint8"] = "auto"
    calibration_samples: Positive = 200
    apply_to: list[str] = Field(default_factory=lambda: ["*"], min_length=1)

    @model_validator(mode="after")
    def _coherent(self) -> QuantSpec:
        if self.precision == "fp16" and self.method != "static":
            raise ValueError("method applies to int8 only; fp16 has no dynamic variant")
        if self.method == "dynamic" and self.target == "tensorrt":
            raise ValueError("TensorRT does not parse dynamic quantization (DynamicQuantizeLinear); use method = 'static'")
        if self.target == "tensorrt" and self.precision == "int8" and self.activation_type == "uint8":
            raise ValueError("TensorRT needs symmetric int8 activations: activation_type must be 'auto' or 'int8'")
        return self

    @property
    def recipe(self) -> str:
        """Registry name of the quantizer and the variant-name suffix: int8 | int8-dynamic | int8-trt | fp16."""
        if self.precision == "fp16":
            return "fp16"
        if self.method == "dynamic":
            return "int8-dynamic"
        return "int8-trt" if self.target == "tensorrt" else "int8"


# ---------------------------------------------------------------------------- measurement


ScenarioName = Literal["single-stream", "multi-stream", "offline"]


class MeasureSpec(Spec):
    """How latency, memory and energy are measured. ``profile`` picks defaults; explicit fields override them.

    Scenarios are named as MLPerf names them: ``single-stream`` (batch 1, back to back, p90 is
    the headline), ``multi-stream`` (``multi_stream_frames`` frames per query, p99 is the
    headline) and ``offline`` (``offline_batch`` samples per query, samples/s is the headline).
    Give either ``scenarios`` (the batch sizes follow from them) or ``batch_sizes`` (each batch
    gets its scenario: 1 is single-stream, the largest above 1 is offline, any other is
    multi-stream with that many frames per query), not both.
    """

    batch_sizes: list[Positive] = Field(default_factory=lambda: [1, 8], min_length=1)
    scenarios: list[ScenarioName] | None = Field(default=None, min_length=1)
    multi_stream_frames: Annotated[int, Field(gt=1)] = 8
    offline_batch: Annotated[int, Field(gt=1)] = 32
    profile: Literal["standard", "quick"] = "standard"
    warmup_runs: Positive | None = None
    warmup_s: Annotated[float, Field(ge=0)] | None = None
    min_samples: Positive | None = None
    min_duration_s: Annotated[float, Field(ge=0)] | None = None
    max_duration_s: Annotated[float, Field(gt=0)] | None = None
    # convergence: p50 of the last three windows within this relative spread, and the robust CV
    # (1.4826 MAD / median) under max_robust_cv
    window_tolerance: Annotated[float, Field(gt=0)] | None = None
    max_robust_cv: Annotated[float, Field(gt=0)] | None = None
    bootstrap_resamples: Annotated[int, Field(ge=100)] = 1000
    bootstrap_seed: int = 0
    # idle power measured before the timed loop, in each measuring process, when a meter is available
    idle_baseline_s: Annotated[float, Field(ge=0)] | None = None
    # "auto" (the best meter the machine has) or a registered meter (harness.meters.METERS),
    # checked by harness.experiment
    energy_meter: str = "auto"
    external_meter_command: str | None = None  # prints watts (or joules) per line; see harness.meters.external
    threads: Positive | None = None
    isolation: Literal["process", "inline"] = "process"
    # pin clocks while measuring, restored afterwards (harness.measure.clock_lock): jetson_clocks on a
    # Jetson, NVML locked GPU clocks elsewhere; needs root, and warns (never fails) without it
    lock_clocks: bool = False
    lock_gpu_clock_mhz: Positive | None = None  # None: the GPU's default applications (base) SM clock

    @model_validator(mode="before")
    @classmethod
    def _batches_from_scenarios(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("scenarios") is None:
            return data
        batch_of = {
            "single-stream": 1,
            "multi-stream": data.get("multi_stream_frames", 8),
            "offline": data.get("offline_batch", 32),
        }
        names = list(dict.fromkeys(data["scenarios"]))
        batches = [batch_of.get(n) for n in names]
        clash = [b for b in set(batches) if isinstance(b, int) and batches.count(b) > 1]
        if clash:
            raise ValueError(
                f"measure.scenarios {names} put two scenarios at batch size {clash[0]}: "
                "set measure.multi_stream_frames and measure.offline_batch to different values"
            )
        given = data.get("batch_sizes")
        known = [b for b in batches if isinstance(b, int)]  # an unknown scenario name is the Literal's error
        if given is not None and sorted(set(given)) != sorted(known):  # equal when a dumped spec is re-read
            raise ValueError("give measure.scenarios or measure.batch_sizes, not both (scenarios set the batch sizes)")
        return {**data, "scenarios": names, "batch_sizes": batches}

    @field_validator("batch_sizes")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        return sorted(set(v))

    def scenario_for(self, batch_size: int) -> str:
        """The MLPerf scenario a measured batch size stands for."""
        if self.scenarios is not None:
            by_batch = {1: "single-stream", self.multi_stream_frames: "multi-stream", self.offline_batch: "offline"}
            by_batch = {b: n for b, n in by_batch.items() if n in self.scenarios}
            return by_batch[batch_size]
        if batch_size == 1:
            return "single-stream"
        return "offline" if batch_size == max(self.batch_sizes) else "multi-stream"

    def scenario_plan(self) -> list[tuple[str, int]]:
        """``(scenario, batch_size)`` for every measured batch size, smallest batch first."""
        return [(self.scenario_for(b), b) for b in self.batch_sizes]


class TensorRTSpec(Spec):
    """Engine build options for the ``tensorrt`` runtime (harness.export.tensorrt)."""

    workspace_mb: Positive | None = None  # None: 512 on unified-memory targets, else 1024
    dla_core: Annotated[int, Field(ge=0)] | None = None  # run on this DLA core, GPU fallback for the rest
    builder_optimization_level: Annotated[int, Field(ge=0, le=5)] | None = None


class SelectionSpec(Spec):
    """Objectives of the Pareto front, the constraints of the chosen point, and the utility weights.

    The first objective is the primary one: constraint-first picks the best point on it among
    those meeting every constraint (``harness/selection.py`` describes the three policies).
    Drops are fractions against the dense baseline; a budget left out is not applied.
    """

    objectives: list[str] = Field(
        default_factory=lambda: ["p50_ms:min", "top1:max", "worst_class_recall:max"], min_length=2
    )
    batch_size: Positive = 1
    max_top1_drop: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_worst_class_drop: Annotated[float, Field(ge=0, le=1)] = 0.03
    max_class_drop: Annotated[float, Field(ge=0, le=1)] | None = None  # largest per-class recall drop
    min_worst_group_recall: Annotated[float, Field(ge=0, le=1)] | None = None  # = worst-group accuracy
    latency_budget_ms: Annotated[float, Field(gt=0)] | None = None
    latency_budget_metric: str = "p99_ms"  # any catalog metric in ms (harness.metric_catalog.LATENCY_METRICS)
    energy_budget_mj: Annotated[float, Field(gt=0)] | None = None  # per inference
    memory_budget_mb: Annotated[float, Field(gt=0)] | None = None  # peak RSS
    # more constraints in the grammar METRIC<=NUMBER / METRIC>=NUMBER, e.g. "cie_fraction<=0.05"
    constraints: list[str] = Field(default_factory=list)
    # weighted-utility policy: objective metric -> weight >= 0 (default: equal weights)
    weights: dict[str, float] = Field(default_factory=dict)

    @field_validator("objectives", "constraints")
    @classmethod
    def _parse(cls, v: list[str], info: ValidationInfo) -> list[str]:
        parse = parse_objective if info.field_name == "objectives" else parse_constraint
        for text in v:
            parse(text)  # raises ParseError (a ValueError) naming the culprit
        return v

    @field_validator("latency_budget_metric")
    @classmethod
    def _a_latency_metric(cls, v: str) -> str:
        if v not in LATENCY_METRICS:
            raise ValueError(f"must be a latency metric: one of {', '.join(LATENCY_METRICS)}")
        return v

    @field_validator("weights")
    @classmethod
    def _weights_on_objectives(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        if "objectives" in info.data:  # else the objectives' own error is reported
            normalise_weights(v, [parse_objective(o) for o in info.data["objectives"]])
        return v


class GroupsSpec(Spec):
    """How group attributes are analysed (the attributes themselves come from ``dataset``).

    ``intersections``: pairs of attributes whose combinations become groups of their own
    (``[["Male", "Young"]]`` adds the attribute ``Male&Young`` with levels such as
    ``Male&not Young``), with accuracy, worst group, deltas and intervals like any attribute.
    ``min_support``: a group level with fewer evaluation samples is flagged small-support in the
    records and card (kept, never hidden: its interval shows how little it says).
    """

    intersections: list[list[str]] = Field(default_factory=list)
    min_support: Annotated[int, Field(ge=1)] = 30

    @field_validator("intersections")
    @classmethod
    def _pairs(cls, v: list[list[str]]) -> list[list[str]]:
        for pair in v:
            if len(pair) != 2 or pair[0] == pair[1] or not all(pair):
                raise ValueError(f"each intersection is two distinct attribute names, got {pair}")
        keys = [tuple(p) for p in v]
        if len(set(keys)) != len(keys):
            raise ValueError(f"intersections repeat a pair: {v}")
        return v


class BiasSpec(Spec):
    """Choices of the bias metrics (shared/research/metrics.md).

    ``cev_variant``: ``"reference"`` (default; Blakeney et al.'s code, percent units,
    CEV = ½·[Var(x) + Var(y)], SDE with 1/√2) or ``"normalised"`` (the NAS 2022 third-party form:
    fractions, CEV = Var(x) + Var(y), SDE without 1/√2; CEV_norm = 2·CEV_ref/100²).
    ``n_boot``: bootstrap resamples of every 95 % interval (per-class and per-group deltas, CEV, CIE).
    """

    cev_variant: Literal["reference", "normalised"] = "reference"
    n_boot: Annotated[int, Field(ge=10, le=10000)] = 200


class CardSpec(Spec):
    """What the model card's metadata says beyond what the run measured.

    ``license``: the Hub license id of the model (``"apache-2.0"``, ``"mit"``, ``"other"`` ...), written
    as ``license`` in the card's front matter; None leaves it out (the harness never assumes one).
    """

    license: str | None = None

    @field_validator("license")
    @classmethod
    def _license_is_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be empty (leave it out when the model has no license)")
        return v


class ExperimentSpec(Spec):
    name: str = "experiment"  # names the run in the store and the card
    seed: Annotated[int, Field(ge=0)] = 0  # numpy and torch seeds are non-negative
    # K baselines (seeds seed .. seed+K-1), each compressed the same way, for CIE and CEV over
    # populations (Hooker et al.); the deployed and timed model is the first seed's. Odd K avoids ties.
    population: Annotated[int, Field(ge=1, le=50)] = 1
    dataset: DatasetSpec = DatasetSpec()
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    prune: list[PruneSpec] = Field(default_factory=list)
    quantize: list[QuantSpec] = Field(default_factory=list)
    runtimes: list[str] = Field(default_factory=lambda: ["onnxruntime", "torch"], min_length=1)
    measure: MeasureSpec = MeasureSpec()
    selection: SelectionSpec = SelectionSpec()
    tensorrt: TensorRTSpec = TensorRTSpec()
    groups: GroupsSpec = GroupsSpec()
    bias: BiasSpec = BiasSpec()
    card: CardSpec = CardSpec()
    # a device profile in targets/ (`harness targets list`); its runtimes and precisions are checked
    target: str | None = None

    @field_validator("name")
    @classmethod
    def _name_is_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @model_validator(mode="after")
    def _dla_needs_a_target_with_dla(self) -> ExperimentSpec:
        if self.tensorrt.dla_core is not None and self.target is None:
            raise ValueError("tensorrt.dla_core needs a target with DLA (e.g. target = \"jetson-agx-orin\")")
        return self

    @model_validator(mode="after")
    def _coherent(self) -> ExperimentSpec:
        if self.population > 1 and self.model.fixed_weights:
            raise ValueError(f"population = {self.population} trains K seeds, but model weights come from a file "
                             f"({self.model.checkpoint or self.model.name}): use population = 1")
        declared = set(self.dataset.group_attributes)
        for pair in self.groups.intersections:
            unknown = [a for a in pair if declared and a not in declared]
            if unknown:
                raise ValueError(
                    f"groups.intersections: {unknown[0]!r} is not in dataset.group_attributes {sorted(declared)}"
                )
        if self.selection.batch_size not in self.measure.batch_sizes:
            raise ValueError(
                f"selection.batch_size {self.selection.batch_size} is not among "
                f"measure.batch_sizes {self.measure.batch_sizes}"
            )
        return self

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def spec_hash(*parts: Any, length: int = 12) -> str:
    """Stable short hash of JSON-serialisable parts (specs are dumped first)."""
    payload = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
