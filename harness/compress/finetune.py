"""Fine-tuning after pruning, optionally distilled from the dense model.

One loop serves every pruner: AdamW with a cosine schedule (as in baseline training), masks
held by ``torch.nn.utils.prune`` re-parametrisations (the pruned weights stay zero because
the forward pass multiplies by the mask), and an ``on_step`` hook called before every
optimizer step, which the gradual magnitude schedule uses to raise sparsity during training.

With ``distill`` the dense baseline is the teacher (Hinton et al.):
``loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)``.
Blakeney et al. ("Reduce, Reuse, Recycle", 2022) report that distilling from the dense model
reduces the accuracy loss pruning concentrates on some classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.data.base import Dataset
from harness.errors import InputError
from harness.progress import ProgressReporter

BATCH_SIZE = 64

#: on_step(iteration, total_iterations) is called before each optimizer step
StepHook = Callable[[int, int], None]


def total_iterations(dataset: Dataset, epochs: int) -> int:
    return epochs * max(1, -(-len(dataset.train.y) // BATCH_SIZE))


def distillation_loss(student_logits, teacher_logits, labels, temperature: float, alpha: float):
    """Hinton's KD loss: soft targets at temperature T (scaled by T^2) blended with hard-label CE."""
    import torch.nn.functional as F

    hard = F.cross_entropy(student_logits, labels)
    if alpha == 0.0:
        return hard
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1),
        F.log_softmax(teacher_logits / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * (temperature**2)
    return alpha * soft + (1.0 - alpha) * hard


def finetune(
    model,
    dataset: Dataset,
    options: dict[str, Any],
    seed: int,
    progress: ProgressReporter,
    description: str,
    *,
    teacher=None,
    on_step: StepHook | None = None,
):
    """Train ``model`` in place for ``options['finetune_epochs']``; returns it in eval mode.

    ``teacher`` is used only when ``options['distill']`` is true; its logits on the training
    split are computed once (the teacher is frozen).
    """
    import torch

    from harness.models.train import predict_logits

    epochs = int(options.get("finetune_epochs", 0))
    total = total_iterations(dataset, epochs)
    if epochs == 0:
        if on_step is not None:
            on_step(0, 0)
        return model.eval()
    distill = bool(options.get("distill")) and teacher is not None
    temperature, alpha = float(options.get("temperature", 4.0)), float(options.get("alpha", 0.5))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.from_numpy(dataset.train.x)
    y = torch.from_numpy(dataset.train.y)
    soft = torch.from_numpy(predict_logits(teacher, dataset.train.x)) if distill else None
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=options.get("finetune_lr", 5e-4), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    model.train()
    iteration = 0
    loss = torch.zeros(())
    label = f"{description} (distilled, T={temperature:g})" if distill else description
    with progress.task(label, total=epochs) as task:
        for _ in range(epochs):
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y), BATCH_SIZE):
                if on_step is not None:
                    on_step(iteration, total)
                idx = order[start : start + BATCH_SIZE]
                logits = model(x[idx])
                if distill:
                    loss = distillation_loss(logits, soft[idx], y[idx], temperature, alpha)
                else:
                    loss = torch.nn.functional.cross_entropy(logits, y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                iteration += 1
            task.advance()
    if not torch.isfinite(loss):
        raise InputError(f"{description}: fine-tuning diverged (loss {loss.item()})")
    return model.eval()
