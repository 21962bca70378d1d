"""The grid of variants an experiment asks for, each with a content-derived id.

``variant_id`` hashes the baseline's key, the pruning and the quantization spec, so the
same variant in another run (or for another runtime) maps to the same cached artifact.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from harness.config import ExperimentSpec, QuantSpec, spec_hash


@dataclass(frozen=True)
class Variant:
    variant_id: str
    name: str  # dense | magnitude-0.5 | magnitude-layer-gradual-0.8-kd | channel-0.3 | 2:4 | dense+int8 ...
    prune_method: str  # none | magnitude | channel | 2:4
    prune_amount: float
    prune_options: dict[str, Any]
    quant: QuantSpec | None
    parent_id: str | None  # the fp32 variant a quantized one is made from
    seed: int = 0  # the seed of the baseline it is made from; the deployed model's is the experiment's seed
    recipe_known: bool = True  # False only for a variant read from a store that predates variant specs

    @property
    def precision(self) -> str:
        return self.quant.precision if self.quant else "fp32"

    def to_record(self) -> dict[str, Any]:
        """The full spec as JSON-ready values: what the store keeps, so a worker rebuilds this exact variant."""
        return {
            "variant_id": self.variant_id, "name": self.name, "prune_method": self.prune_method,
            "prune_amount": self.prune_amount, "prune_options": self.prune_options,
            "quant": None if self.quant is None else self.quant.model_dump(mode="json"),
            "parent_id": self.parent_id, "seed": self.seed,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Variant:
        quant = record.get("quant")
        return cls(
            record["variant_id"], record["name"], record["prune_method"], float(record["prune_amount"]),
            dict(record["prune_options"]), None if quant is None else QuantSpec.model_validate(quant),
            record["parent_id"], int(record["seed"]),
        )


def _amount_label(x: float) -> str:
    return f"{x:g}"


def prune_variant_name(method: str, amount: float, options: dict[str, Any]) -> str:
    """``method[-layer][-gradual][-amount][-kd][-stale-bn]``: the default recipe keeps the short name."""
    parts = [method]
    if options.get("scope") == "layer":
        parts.append("layer")
    if options.get("schedule") == "gradual":
        parts.append("gradual")
    if method != "2:4":  # 2:4 is always half the weights of the layers it applies to
        parts.append(_amount_label(amount))
    if options.get("distill"):
        parts.append("kd")
    if options.get("bn_recalibration") is False:
        parts.append("stale-bn")
    return "-".join(parts)


def _prune_grid(spec: ExperimentSpec) -> list[tuple[str, str, float, dict[str, Any]]]:
    """``(name, method, amount, options)`` of every pruning level the experiment asks for."""
    grid = []
    for prune in spec.prune:
        options = prune.model_dump(mode="json")
        method = options.pop("method")
        amounts = options.pop("sparsity", None) or options.pop("ratio", None) or [0.5]  # 2:4: half by construction
        grid += [(prune_variant_name(method, amount, options), method, amount, options) for amount in amounts]
    return grid


def fp32_variant_names(spec: ExperimentSpec) -> list[str]:
    """The names ``quantize.apply_to`` patterns are matched against: dense and every pruning level."""
    return ["dense", *(name for name, *_ in _prune_grid(spec))]


def unmatched_apply_to(spec: ExperimentSpec) -> tuple[int, str] | None:
    """The first ``(quantize index, pattern)`` of an ``apply_to`` that matches no fp32 variant, or None."""
    names = fp32_variant_names(spec)
    for i, quant in enumerate(spec.quantize):
        for pattern in quant.apply_to:
            if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
                return i, pattern
    return None


def expand_variants(spec: ExperimentSpec, baseline_key: str, seed: int | None = None) -> list[Variant]:
    """Dense first, then every pruning level, then quantized copies of the matching fp32 variants.

    ``seed``: the seed of the baseline ``baseline_key`` names (default: the experiment's)."""
    seed = spec.seed if seed is None else seed
    fp32 = [Variant(spec_hash(baseline_key, "dense"), "dense", "none", 0.0, {}, None, None, seed)]
    for name, method, amount, options in _prune_grid(spec):
        fp32.append(
            Variant(spec_hash(baseline_key, method, amount, options), name, method, amount, options, None, None, seed)
        )
    variants = list(fp32)
    for quant in spec.quantize:
        for parent in fp32:
            if any(fnmatch.fnmatchcase(parent.name, pattern) for pattern in quant.apply_to):
                variants.append(
                    Variant(
                        spec_hash(parent.variant_id, quant),
                        f"{parent.name}+{quant.recipe}",
                        parent.prune_method,
                        parent.prune_amount,
                        parent.prune_options,
                        quant,
                        parent.variant_id,
                        seed,
                    )
                )
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        from harness.errors import ConfigError

        raise ConfigError(f"the prune / quantize grid produces duplicate variants: {', '.join(duplicates)}")
    return variants


def _pruning_words(method: str, amount: float, options: dict[str, Any]) -> str:
    """``options`` is the prune spec's full dump (every default included), so nothing here repeats a default."""
    if method == "magnitude":
        schedule = f"gradual over {options['steps']} steps" if options["schedule"] == "gradual" else "one-shot"
        return f"magnitude pruning to {amount:.0%} sparsity ({options['scope']}, {schedule})"
    if method == "channel":
        return f"channel pruning at ratio {amount:g} (torch-pruning, widths rounded to multiples of {options['round_to']})"
    return "2:4 semi-structured pruning"


def _finetuning_words(options: dict[str, Any]) -> list[str]:
    epochs = int(options["finetune_epochs"])
    words = [
        "BatchNorm statistics re-estimated after pruning" if options["bn_recalibration"]
        else "BatchNorm statistics kept from the dense model"
    ]
    if epochs == 0:
        return [*words, "no fine-tuning"]
    tuned = f"{epochs} fine-tuning epoch{'s' if epochs != 1 else ''} at lr {options['finetune_lr']:g}"
    if options["distill"]:
        tuned += f", distilled from the dense model (T {options['temperature']:g}, alpha {options['alpha']:g})"
    return [*words, tuned]


def _quantization_words(quant: QuantSpec) -> str:
    if quant.precision == "fp16":
        return "fp16 weights and compute (float32 inputs and outputs)"
    if quant.method == "dynamic":
        return "int8 dynamic quantization (onnxruntime quantize_dynamic)"
    weights = "per-channel" if quant.per_channel else "per-tensor"
    activations = "uint8 activations on x86, int8 elsewhere" if quant.activation_type == "auto" else f"{quant.activation_type} activations"
    placement = "TensorRT placement, symmetric" if quant.target == "tensorrt" else activations
    return (f"int8 static QDQ ({placement}, {weights} weights, {quant.calibration_method} calibration on up to "
            f"{quant.calibration_samples} calibration images)")


def describe_recipe(variant: Variant) -> str | None:
    """How a variant was made, in one line of words, for the model card and the store.

    None for a variant stored without its spec (the card then shows the short form)."""
    if not variant.recipe_known:
        return None
    if variant.prune_method == "none":
        parts = ["dense (no pruning)"]
    else:
        parts = [_pruning_words(variant.prune_method, variant.prune_amount, variant.prune_options),
                 *_finetuning_words(variant.prune_options)]
    if variant.quant is not None:
        parts.append(_quantization_words(variant.quant))
    return "; ".join(parts)
