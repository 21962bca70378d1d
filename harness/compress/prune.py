"""Pruning recipes. Each takes a trained model and returns a pruned, fine-tuned copy.

* ``magnitude``: unstructured L1 pruning of every conv / linear weight, ``scope`` global (one
  threshold over all layers) or layer (the same fraction in each), ``schedule`` one-shot or
  gradual (Zhu & Gupta 2017: sparsity ``s_k = s_f (1 - (1 - k/n)^3)`` at ``n`` evenly spaced
  steps during fine-tuning, the last step ``1/n`` of the way before the end). Masks are held
  while fine-tuning and made permanent afterwards, so no mask node reaches the ONNX.
* ``channel``: structured channel pruning with torch-pruning's dependency graph (group L2
  magnitude, channel counts rounded to ``round_to``, the classifier head kept).
* ``2:4``: see :mod:`harness.compress.semistructured`.

Every recipe fine-tunes with :func:`harness.compress.finetune.finetune`, distilled from the
dense model when the spec says ``distill = true``. The baseline passed in is never modified.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from harness.compress.finetune import finetune
from harness.data.base import Dataset
from harness.progress import ProgressReporter


@dataclass(frozen=True)
class PruneResult:
    model: Any
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    details: dict[str, Any] = field(default_factory=dict)  # recipe-specific facts for details.json


def _count(model, example) -> tuple[int, int]:
    import torch_pruning as tp

    macs, params = tp.utils.count_ops_and_params(model, example)
    return int(macs), int(params)


def _example(dataset: Dataset):
    import torch

    return torch.from_numpy(dataset.evaluation.x[:1])


def _teacher(baseline, options: dict):
    return baseline.eval() if options.get("distill") else None


def _finetune_details(options: dict) -> dict[str, bool]:
    """What the shared fine-tuning step did, for every recipe's details.json."""
    return {"distilled": bool(options.get("distill")), "bn_recalibration": bool(options.get("bn_recalibration", True))}


def _prunable(model) -> list[tuple[str, Any]]:
    import torch.nn as nn

    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _zero_smallest(scores, k: int):
    """A {0, 1} mask of ``scores``' shape with exactly ``k`` zeros at the smallest scores."""
    import torch

    mask = torch.ones_like(scores)
    if k > 0:
        flat = mask.view(-1)
        flat[torch.topk(scores.reshape(-1), k, largest=False).indices] = 0
    return mask


def magnitude_masks(weights: list, amount: float, scope: str) -> list:
    """Masks zeroing ``amount`` of the weights by |w|: over all tensors at once or per tensor."""
    import torch

    scores = [w.detach().abs() for w in weights]
    if scope == "layer":
        return [_zero_smallest(s, round(amount * s.numel())) for s in scores]
    flat = torch.cat([s.reshape(-1) for s in scores])
    mask = _zero_smallest(flat, round(amount * flat.numel()))
    return [m.view_as(s) for m, s in zip(torch.split(mask, [s.numel() for s in scores]), scores, strict=True)]


def cubic_sparsity(final: float, step: int, steps: int) -> float:
    """Zhu & Gupta's schedule from 0: the sparsity after pruning step ``step`` (1-based) of ``steps``."""
    return final * (1.0 - (1.0 - step / steps) ** 3)


def magnitude_prune(model, amount: float, options: dict, dataset: Dataset, seed: int, progress: ProgressReporter, name: str) -> PruneResult:
    import torch
    import torch.nn.utils.prune as tprune

    baseline, model = model, copy.deepcopy(model)
    macs, params = _count(model, _example(dataset))
    targets = [m for _, m in _prunable(model)]
    for module in targets:
        tprune.identity(module, "weight")  # weight = weight_orig * weight_mask from here on
    scope = options.get("scope", "global")
    gradual = options.get("schedule", "one-shot") == "gradual"
    steps = int(options.get("steps", 4)) if gradual else 1
    reached: list[float] = []

    def prune_to(sparsity: float) -> None:
        with torch.no_grad():
            for module, mask in zip(targets, magnitude_masks([m.weight for m in targets], sparsity, scope), strict=True):
                module.weight_mask.copy_(mask)
        reached.append(sparsity)

    def on_step(iteration: int, total: int) -> None:
        # prune at iterations 0, T/n, ..., (n-1)T/n; with no training every step happens at once
        while len(reached) < steps and (total == 0 or iteration >= len(reached) * total // steps):
            prune_to(cubic_sparsity(amount, len(reached) + 1, steps))

    if not gradual:
        prune_to(amount)
    model = finetune(model, dataset, options, seed, progress, f"fine-tuning {name}", teacher=_teacher(baseline, options),
                     on_step=on_step if gradual else None)
    for module in targets:
        tprune.remove(module, "weight")  # bake the zeros into the weight; drops the re-parametrisation
    # MACs of the dense graph are unchanged: unstructured zeros are still multiplied by dense kernels
    details = {"scope": scope, "schedule": options.get("schedule", "one-shot"), "sparsity_steps": reached,
               **_finetune_details(options)}
    return PruneResult(model, macs, macs, params, params, details)


def kept_channels(channels: int, amount: float, round_to: int) -> int:
    """Channels a layer keeps at pruning ratio ``amount``: ``channels * (1 - amount)`` rounded to the
    *nearest* multiple of ``round_to`` (at least one multiple, never more than ``channels``).

    torch-pruning's own ``round_to`` rounds the kept count *down*, which on narrow layers prunes far
    more than asked (ratio 0.1 of 32 channels keeps 24, a quarter gone; 0.3 keeps 16, half gone).
    """
    kept = round(channels * (1.0 - amount) / round_to) * round_to
    return min(channels, max(round_to, kept))


def rounded_ratios(model, amount: float, round_to: int, ignored: list) -> dict:
    """Per-layer pruning ratios for torch-pruning's ``pruning_ratio_dict`` that make every conv keep
    :func:`kept_channels` (the pruner's own ``round_to`` then only absorbs float truncation)."""
    import torch.nn as nn

    return {
        m: (m.out_channels - kept_channels(m.out_channels, amount, round_to)) / m.out_channels
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and m not in ignored and m.out_channels > 0
    }


def channel_prune(model, amount: float, options: dict, dataset: Dataset, seed: int, progress: ProgressReporter, name: str) -> PruneResult:
    import torch.nn as nn
    import torch_pruning as tp

    baseline, model = model, copy.deepcopy(model).eval()
    example = _example(dataset)
    macs_before, params_before = _count(model, example)
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    round_to = options.get("round_to", 8)
    pruner = tp.pruner.BasePruner(
        model,
        example,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=amount,
        pruning_ratio_dict=rounded_ratios(model, amount, round_to, head),
        ignored_layers=head,
        round_to=round_to,
    )
    pruner.step()
    model = finetune(model, dataset, options, seed, progress, f"fine-tuning {name}", teacher=_teacher(baseline, options))
    macs_after, params_after = _count(model, example)
    widths = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    details = {"round_to": round_to, "conv_out_channels": widths, **_finetune_details(options)}
    return PruneResult(model, macs_before, macs_after, params_before, params_after, details)
