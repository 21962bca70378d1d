"""The dense model every variant starts from: trained, read from the cache, loaded from a checkpoint, or a file.

Builds on :mod:`harness.models.sources` (where a model comes from) and
:mod:`harness.models.train` (training and its cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import spec_hash
from harness.hashing import file_sha256
from harness.models.sources import _existing, check_onnx_fits, load_checkpoint, onnx_external_files, source_kind
from harness.models.train import build_model, train_baseline

if TYPE_CHECKING:
    from harness.config import ModelSpec, TrainSpec
    from harness.data.base import Dataset
    from harness.progress import ProgressReporter


@dataclass(frozen=True)
class Baseline:
    """The dense model every variant starts from."""

    kind: str  # a SOURCES kind or "onnx"
    model: Any | None  # nn.Module (the exported program's module for .pt2); None for ONNX
    file: Path | None  # the .pt2 or .onnx file deployed as it is
    key: str  # cache key of the weights (content-derived)
    origin: str  # trained | loaded from cache | checkpoint | exported program | onnx file

    @property
    def fixed(self) -> bool:
        """A file deployed as it is: no pruning or fine-tuning applies."""
        return self.file is not None


def load_baseline(
    model_spec: ModelSpec,
    train_spec: TrainSpec,
    dataset: Dataset,
    dataset_key: str,
    seed: int,
    cache_dir: Path,
    progress: ProgressReporter,
) -> Baseline:
    """Train, load from cache, load a checkpoint into, or read the model ``model_spec`` names."""
    import torch

    kind = source_kind(model_spec.name)
    if kind == "onnx":
        path = _existing(model_spec.name, "ONNX model")
        check_onnx_fits(path, dataset)
        external = [file_sha256(f) for f in onnx_external_files(path)]  # the weights are part of the model
        key = spec_hash(model_spec, file_sha256(path), *([external] if external else []), dataset_key)
        return Baseline(kind, None, path, key, "onnx file")
    if kind == "exported-program":
        path = _existing(model_spec.name, "exported program")
        model = build_model(model_spec, dataset)
        key = spec_hash(model_spec, file_sha256(path), dataset_key, torch.__version__)
        return Baseline(kind, model, path, key, "exported program")
    if model_spec.checkpoint is not None:
        path = _existing(model_spec.checkpoint, "checkpoint")
        model = load_checkpoint(build_model(model_spec, dataset), path, model_spec.name)
        key = spec_hash(model_spec, file_sha256(path), dataset_key, torch.__version__)
        return Baseline(kind, model, None, key, f"checkpoint {path.name}")
    model, key, cached = train_baseline(model_spec, train_spec, dataset, dataset_key, seed, cache_dir, progress)
    return Baseline(kind, model, None, key, "loaded from cache" if cached else "trained")
