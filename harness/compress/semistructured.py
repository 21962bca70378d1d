"""2:4 semi-structured sparsity: the pattern NVIDIA's sparse tensor cores accept.

In every group of 4 consecutive weights along the **reduction** axis at least 2 are zero.
For a conv weight ``[K, C, R, S]`` the groups run over ``C`` for each ``(k, r, s)``; for a
linear weight ``[out, in]`` over ``in``. Layers whose reduction size is not a multiple of 4
(a stem conv over 1 or 3 colour channels, a depthwise conv) are left dense and listed.

The pruner keeps the 2 largest magnitudes of each group (ASP / ModelOpt's ``sparse_magnitude``
rule), holds the mask through fine-tuning (optionally distilled) and bakes it in. The checker
:func:`~harness.sparsity.check_2_4` is pure numpy and works on any weight array, so it validates
what an exported ONNX file really holds (see :func:`harness.export.inspect.validate_2_4`).
"""

from __future__ import annotations

import copy

from harness.compress.finetune import finetune
from harness.compress.prune import PruneResult, _count, _example, _finetune_details, _prunable, _teacher
from harness.data.base import Dataset
from harness.progress import ProgressReporter
from harness.sparsity import GROUP, KEEP


def mask_2_4(weight):
    """torch mask keeping the 2 largest |w| of every group of 4 along dim 1 (the reduction axis)."""
    import torch

    moved = weight.detach().abs().movedim(1, -1)  # [K, R, S, C] for conv, [out, in] for linear
    groups = moved.reshape(-1, GROUP)
    mask = torch.zeros_like(groups)
    mask.scatter_(1, torch.topk(groups, KEEP, dim=1).indices, 1.0)
    return mask.reshape(moved.shape).movedim(-1, 1).contiguous()


def semistructured_prune(
    model, amount: float, options: dict, dataset: Dataset, seed: int, progress: ProgressReporter, name: str
) -> PruneResult:
    import torch.nn.utils.prune as tprune

    baseline, model = model, copy.deepcopy(model)
    macs, params = _count(model, _example(dataset))
    pruned, skipped = [], {}
    for layer, module in _prunable(model):
        reduction = module.weight.shape[1]
        if reduction % GROUP:
            skipped[layer] = f"reduction size {reduction} is not a multiple of {GROUP}"
            continue
        tprune.custom_from_mask(module, "weight", mask_2_4(module.weight))
        pruned.append((layer, module))
    if not pruned:
        from harness.errors import InputError

        raise InputError(f"no conv / linear layer of {name} has a reduction size divisible by {GROUP}; 2:4 cannot apply")
    model = finetune(model, dataset, options, seed, progress, f"fine-tuning {name}", teacher=_teacher(baseline, options))
    for _, module in pruned:
        tprune.remove(module, "weight")
    details = {"pattern": "2:4", "layers_pruned": [n for n, _ in pruned], "layers_skipped": skipped,
               **_finetune_details(options)}
    return PruneResult(model, macs, macs, params, params, details)
