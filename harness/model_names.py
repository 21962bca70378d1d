"""What kind of model source a ``[model] name`` is, read from the name alone (no import, no file access).

The builders for each kind live in :mod:`harness.models.sources`; this module only classifies names,
so the experiment spec can check a name's coherence without importing them.
"""

from __future__ import annotations

from pathlib import Path

#: file suffix -> source kind; these sources are fixed artifacts (no training, no pruning)
FILE_SOURCES = {".onnx": "onnx", ".pt2": "exported-program"}
#: ``prefix:NAME`` sources backed by an optional package
PACKAGE_SOURCES = ("torchvision", "timm")


def source_kind(name: str) -> str:
    """``zoo`` | ``torchvision`` | ``timm`` | ``module`` | ``exported-program`` | ``onnx``."""
    suffix = Path(name).suffix.lower()
    if suffix in FILE_SOURCES:
        return FILE_SOURCES[suffix]
    prefix, sep, _ = name.partition(":")
    if not sep:
        return "zoo"
    return prefix if prefix in PACKAGE_SOURCES else "module"


def is_fixed_artifact(name: str) -> bool:
    return source_kind(name) in FILE_SOURCES.values()


def base_model_name(name: str, checkpoint: str | None = None) -> str | None:
    """The model card's ``base_model``: the model every variant was made from, when it has a name outside
    this run. A ``.pt2`` / ``.onnx`` model is its file's name, weights from a ``checkpoint`` the checkpoint's
    file name. A model the run trained itself (zoo, ``torchvision:``, ``timm:``, ``module:factory`` without
    a checkpoint) has none: None, never an invented name."""
    if is_fixed_artifact(name):
        return Path(name).name
    if checkpoint is not None:
        return Path(checkpoint).name
    return None
