"""Pruning recipes. Each takes a trained model and returns a pruned, fine-tuned copy.

* ``magnitude``: global unstructured L1 pruning (``torch.nn.utils.prune``), fine-tuned
  with the mask held, then made permanent (no mask nodes reach the ONNX).
* ``channel``: structured channel pruning with torch-pruning's dependency graph
  (group L2 magnitude, channel counts rounded to ``round_to``, classifier head kept).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from harness.data.base import Dataset
from harness.progress import ProgressReporter


@dataclass(frozen=True)
class PruneResult:
    model: Any
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int


def _count(model, example) -> tuple[int, int]:
    import torch_pruning as tp

    macs, params = tp.utils.count_ops_and_params(model, example)
    return int(macs), int(params)


def _finetune(model, dataset: Dataset, options: dict, seed: int, progress: ProgressReporter, name: str):
    from harness.models.train import fit

    return fit(
        model,
        dataset.train,
        epochs=options.get("finetune_epochs", 0),
        batch_size=64,
        lr=options.get("finetune_lr", 5e-4),
        weight_decay=0.0,
        seed=seed,
        progress=progress,
        description=f"fine-tuning {name}",
    )


def _prunable(model):
    import torch.nn as nn

    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def magnitude_prune(model, amount: float, options: dict, dataset: Dataset, seed: int, progress: ProgressReporter, name: str) -> PruneResult:
    import torch
    import torch.nn.utils.prune as tprune

    model = copy.deepcopy(model)
    example = torch.from_numpy(dataset.evaluation.x[:1])
    macs, params = _count(model, example)
    targets = _prunable(model)
    tprune.global_unstructured(targets, pruning_method=tprune.L1Unstructured, amount=amount)
    model = _finetune(model, dataset, options, seed, progress, name)  # masks stay applied while training
    for module, param in targets:
        tprune.remove(module, param)  # bake the zeros into the weight; drops the mask re-parametrisation
    # MACs of the dense graph are unchanged: unstructured zeros are still multiplied by dense kernels
    return PruneResult(model, macs, macs, params, params)


def channel_prune(model, amount: float, options: dict, dataset: Dataset, seed: int, progress: ProgressReporter, name: str) -> PruneResult:
    import torch
    import torch.nn as nn
    import torch_pruning as tp

    model = copy.deepcopy(model).eval()
    example = torch.from_numpy(dataset.evaluation.x[:1])
    macs_before, params_before = _count(model, example)
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    pruner = tp.pruner.BasePruner(
        model,
        example,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=amount,
        ignored_layers=head,
        round_to=options.get("round_to", 8),
    )
    pruner.step()
    model = _finetune(model, dataset, options, seed, progress, name)
    macs_after, params_after = _count(model, example)
    return PruneResult(model, macs_before, macs_after, params_before, params_after)
