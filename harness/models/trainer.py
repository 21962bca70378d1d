"""``harness train``: train a model (or a population of K seeds) on a dataset and write checkpoints.

Each seed gets ``<model>-<dataset>-seed<k>.pt`` (a plain ``state_dict``, loadable with
``harness run --model NAME --checkpoint FILE``) and a JSON sidecar beside it with the
architecture, dataset, classes, seed, training settings and the evaluation-split accuracy.
Training goes through :func:`harness.models.train.train_baseline` and its cache, so a later
``harness run`` of the same model, dataset, training settings and seed reuses these weights.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import atomic_path
from harness.config import ExperimentSpec, spec_hash
from harness.errors import ConfigError
from harness.progress import ProgressReporter

SIDECAR_VERSION = 1


@dataclass(frozen=True)
class TrainedModel:
    seed: int
    checkpoint: str
    sidecar: str
    architecture: str
    dataset: str
    top1: float  # on the evaluation split
    worst_class_recall: float
    worst_class: str
    n_evaluation: int
    from_cache: bool


def _stem(spec: ExperimentSpec, seed: int) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{spec.model.name}-{spec.dataset.name}")
    return f"{name}-seed{seed}"


def train_models(
    spec: ExperimentSpec,
    *,
    seeds: int = 1,
    out_dir: Path = Path("results/models"),
    cache_dir: Path = Path("results/cache/models"),
    progress: ProgressReporter | None = None,
) -> list[TrainedModel]:
    """Train ``spec.model`` on ``spec.dataset`` for seeds ``spec.seed`` .. ``spec.seed + seeds - 1``."""
    from harness import deps

    deps.require("torch", "build", "training a model")
    import torch

    from harness.data import DATASETS
    from harness.metrics import accuracy_stats
    from harness.models.train import predict_logits, train_baseline
    from harness.records import to_dict

    progress = progress or ProgressReporter()
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if spec.model.fixed_weights:
        raise ConfigError(f"model {spec.model.checkpoint or spec.model.name}: weights from a file; nothing to train")
    dataset = DATASETS.get(spec.dataset.name)(spec.dataset, spec.seed)
    ev = dataset.evaluation
    out_dir.mkdir(parents=True, exist_ok=True)
    trained = []
    with progress.task(f"training {spec.model.name} on {spec.dataset.name}", total=seeds) as task:
        for seed in range(spec.seed, spec.seed + seeds):
            task.update(f"training {spec.model.name} on {spec.dataset.name}, seed {seed}")
            model, key, cached = train_baseline(
                spec.model, spec.train, dataset, spec_hash(spec.dataset, spec.seed), seed, cache_dir, progress
            )
            acc = accuracy_stats(ev.y, predict_logits(model, ev.x).argmax(1), dataset.class_names)
            checkpoint = out_dir / f"{_stem(spec, seed)}.pt"
            sidecar = checkpoint.with_suffix(".json")
            with atomic_path(checkpoint) as tmp:
                torch.save(model.state_dict(), tmp)
            info = dataset.info()
            doc: dict[str, Any] = {
                "sidecar_version": SIDECAR_VERSION,
                "architecture": spec.model.name,
                "model": spec.model.model_dump(mode="json"),
                "dataset": {"name": info.name, "spec": spec.dataset.model_dump(mode="json"),
                            "input_shape": info.input_shape, "preprocessing": info.preprocessing,
                            "splits": {s.name: s.n_samples for s in info.splits}},
                "classes": list(dataset.class_names),
                "seed": seed,
                "train": spec.train.model_dump(mode="json"),
                "accuracy": {"split": "evaluation", **{k: v for k, v in to_dict(acc).items()
                                                       if k in ("n_samples", "top1", "worst_class_recall",
                                                                "worst_class", "per_class_recall")}},
                "cache_key": key,
                "torch_version": torch.__version__,
                "load_with": f"harness run --model {spec.model.name} --checkpoint {checkpoint}",
            }
            sidecar.write_text(json.dumps(doc, indent=2))
            trained.append(TrainedModel(seed, str(checkpoint), str(sidecar), spec.model.name, spec.dataset.name,
                                        acc.top1, acc.worst_class_recall, acc.worst_class, acc.n_samples, cached))
            progress.log(f"seed {seed}: top-1 {acc.top1:.4f} on {acc.n_samples} evaluation images "
                         f"({'from cache' if cached else 'trained'}) -> {checkpoint}")
            task.advance()
    return trained
