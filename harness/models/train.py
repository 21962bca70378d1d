"""Training and fine-tuning on the CPU, seeded, with an on-disk cache for baselines."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from harness.atomic import atomic_path
from harness.config import ModelSpec, TrainSpec, spec_hash
from harness.data.base import Dataset, Split
from harness.errors import InputError
from harness.progress import ProgressReporter


def build_model(spec: ModelSpec, dataset: Dataset):
    """The (untrained) module ``spec.name`` names, checked against ``dataset`` with one forward pass."""
    from harness.models.sources import SOURCES, check_fits, source_kind

    kind = source_kind(spec.name)
    if kind not in SOURCES:
        raise InputError(f"model {spec.name}: a {kind} file is deployed as it is and cannot be built or trained")
    model = SOURCES.get(kind)(spec, dataset)
    check_fits(model, dataset, spec.name)
    return model


def fit(
    model,
    split: Split,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    progress: ProgressReporter,
    description: str,
):
    """Plain supervised training with AdamW and a cosine schedule; returns the model in eval mode."""
    import torch
    import torch.nn.functional as F

    if epochs == 0:
        return model.eval()
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.from_numpy(split.x)
    y = torch.from_numpy(split.y)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, -(-len(y) // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    model.train()
    with progress.task(description, total=epochs) as task:
        for _ in range(epochs):
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y), batch_size):
                idx = order[start : start + batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            task.advance()
    if not torch.isfinite(loss):
        raise InputError(f"{description}: training diverged (loss {loss.item()})")
    return model.eval()


def train_baseline(
    model_spec: ModelSpec,
    train_spec: TrainSpec,
    dataset: Dataset,
    dataset_key: str,
    seed: int,
    cache_dir: Path,
    progress: ProgressReporter,
):
    """Train (or load from ``cache_dir``) the dense baseline. Returns (model, cache_key, cached)."""
    import torch

    key = spec_hash(model_spec, train_spec, dataset_key, seed, torch.__version__)
    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_spec.name)  # torchvision:resnet18, pkg.mod:factory
    path = cache_dir / f"baseline-{safe_name}-{key}.pt"
    model = build_model(model_spec, dataset)
    if path.exists():
        try:
            model.load_state_dict(torch.load(path, weights_only=True))
            return model.eval(), key, True
        except (RuntimeError, OSError, EOFError) as exc:  # a truncated cache file is rebuilt, not trusted
            progress.log(f"ignoring unreadable cached baseline {path}: {exc}")
    torch.manual_seed(seed)
    model = build_model(model_spec, dataset)
    fit(
        model,
        dataset.train,
        epochs=train_spec.epochs,
        batch_size=train_spec.batch_size,
        lr=train_spec.lr,
        weight_decay=train_spec.weight_decay,
        seed=seed,
        progress=progress,
        description=f"training {model_spec.name}",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
    return model, key, False


def predict_logits(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    import torch

    model.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            outs.append(model(torch.from_numpy(x[start : start + batch_size])).numpy())
    return np.concatenate(outs)
