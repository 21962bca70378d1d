"""Input specs: what an experiment asks for, validated before any work starts.

Every model forbids unknown keys, so a typo in ``experiment.toml`` is an error naming
the key. CLI flags are applied to the raw mapping *before* validation, so an
impossible override is reported exactly like an impossible value in the file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ConfigError

Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    name: str = "small-cnn"
    channels: list[Positive] | None = None


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
    bias that pruning adds to under-represented classes.
    """

    finetune_epochs: Annotated[int, Field(ge=0)] = 2
    finetune_lr: Annotated[float, Field(gt=0)] = 5e-4
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


class MeasureSpec(Spec):
    """How latency is sampled. ``profile`` picks defaults; explicit fields override them."""

    batch_sizes: list[Positive] = Field(default_factory=lambda: [1, 8], min_length=1)
    profile: Literal["standard", "quick"] = "standard"
    warmup_runs: Positive | None = None
    warmup_s: Annotated[float, Field(ge=0)] | None = None
    min_samples: Positive | None = None
    min_duration_s: Annotated[float, Field(ge=0)] | None = None
    max_duration_s: Annotated[float, Field(gt=0)] | None = None
    threads: Positive | None = None
    isolation: Literal["process", "inline"] = "process"

    @field_validator("batch_sizes")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        return sorted(set(v))


class SelectionSpec(Spec):
    """Objectives of the Pareto front and the guard rails of the chosen point."""

    objectives: list[str] = Field(
        default_factory=lambda: ["p50_ms:min", "top1:max", "worst_class_recall:max"], min_length=2
    )
    batch_size: Positive = 1
    max_top1_drop: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_worst_class_drop: Annotated[float, Field(ge=0, le=1)] = 0.03

    @field_validator("objectives")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        from harness.pareto import parse_objective

        for text in v:
            parse_objective(text)  # raises ValueError naming the problem
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


class ExperimentSpec(Spec):
    name: str = "experiment"
    seed: int = 0
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
    groups: GroupsSpec = GroupsSpec()
    bias: BiasSpec = BiasSpec()
    # a device profile in targets/ (`harness targets list`); its runtimes and precisions are checked
    target: str | None = None

    @model_validator(mode="after")
    def _target_offers_what_is_asked(self) -> ExperimentSpec:
        from harness.runtimes import RUNTIMES
        from harness.targets import check_target

        if self.target is not None and all(r in RUNTIMES for r in self.runtimes):  # else _names_exist says
            try:
                check_target(self, self.target)
            except ConfigError as exc:
                raise ValueError(f"{exc}{f' ({exc.hint})' if exc.hint else ''}") from None
        return self

    @model_validator(mode="after")
    def _names_exist(self) -> ExperimentSpec:
        from harness.data import DATASETS
        from harness.models import MODELS
        from harness.runtimes import RUNTIMES

        for registry, value, key in (
            (DATASETS, self.dataset.name, "dataset.name"),
            (MODELS, self.model.name, "model.name"),
            *((RUNTIMES, r, "runtimes") for r in self.runtimes),
        ):
            if value not in registry:
                try:
                    registry.check(value)
                except ConfigError as exc:
                    raise ValueError(f"{key}: {exc}") from None
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


# ---------------------------------------------------------------------------- loading


DEFAULT_EXPERIMENT = "default.toml"


def _format_validation_error(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {err['input']!r})"
    where = f"{loc}: " if loc else ""
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {where}{msg}{more}"


def _deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_experiment_file(path: Path | None) -> tuple[dict[str, Any], str]:
    """Raw mapping and a display name; ``None`` reads the embedded default."""
    if path is None:
        text = resources.files("harness.experiments").joinpath(DEFAULT_EXPERIMENT).read_text()
        return tomllib.loads(text), f"<embedded {DEFAULT_EXPERIMENT}>"
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"experiment file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read experiment file {path}: {exc}") from None
    try:
        return tomllib.loads(text), str(path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_experiment(path: Path | None = None, overrides: dict[str, Any] | None = None) -> ExperimentSpec:
    """Read, merge CLI overrides into, and validate an experiment."""
    raw, source = read_experiment_file(path)
    if overrides:
        raw = _deep_merge(raw, overrides)
    try:
        return ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
