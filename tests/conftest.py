"""Shared fixtures: a tiny dataset and model built in code (no downloads), and hardware markers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from harness import deps
from harness.config import DatasetSpec, LongTailSpec, ModelSpec
from harness.progress import ProgressReporter

REPO = Path(__file__).resolve().parents[1]
TINY_CHANNELS = [8, 8, 16, 16, 16]


def pytest_collection_modifyitems(config, items):
    has_gpu = shutil.which("nvidia-smi") is not None
    probes = {
        "gpu": (has_gpu, "no NVIDIA GPU visible"),
        "tensorrt": (deps.is_available("tensorrt"), "TensorRT is not installed"),
        "jetson": (Path("/etc/nv_tegra_release").exists(), "not a Jetson board"),
    }
    for item in items:
        for marker, (ok, why) in probes.items():
            if marker in item.keywords and not ok:
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(autouse=True)
def _reset_probes():
    deps.is_available.cache_clear()
    yield


@pytest.fixture(scope="session")
def tiny_dataset():
    """Digits at their native 8x8, classes 3 and 8 long-tailed."""
    from harness.data.digits import load_digits_dataset

    return load_digits_dataset(
        DatasetSpec(image_size=None, long_tail=LongTailSpec(classes=[3, 8], keep_fraction=0.3)), seed=0
    )


@pytest.fixture(scope="session")
def tiny_model(tiny_dataset):
    """A small CNN trained for two epochs: good enough to beat chance by far, quick to build."""
    import torch

    from harness.models.train import build_model, fit

    torch.manual_seed(0)
    model = build_model(ModelSpec(channels=TINY_CHANNELS), tiny_dataset)
    return fit(
        model, tiny_dataset.train, epochs=2, batch_size=32, lr=3e-3, weight_decay=0.0, seed=0,
        progress=ProgressReporter(), description="tiny",
    )


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model, tiny_dataset, tmp_path_factory) -> Path:
    from harness.export.onnx import export_onnx, export_program

    out = tmp_path_factory.mktemp("tiny")
    program = export_program(tiny_model, tiny_dataset.evaluation.x[:1], out / "model.pt2")
    export_onnx(program, tiny_dataset.evaluation.x[:1], out / "model.onnx")
    return out / "model.onnx"


def logits_of(model, x: np.ndarray) -> np.ndarray:
    from harness.models.train import predict_logits

    return predict_logits(model, x)


def tiny_experiment(name: str, *, top: str = "", dataset: str = "", epochs: int = 1, sections: str = "",
                    measure: str = "batch_sizes = [1]\nmin_duration_s = 0.1") -> str:
    """A small experiment for end-to-end tests: 8x8 digits, a tiny CNN, onnxruntime, quick latency.

    ``top`` holds extra top-level keys, ``sections`` extra tables ([[prune]], [[quantize]] ...).
    """
    return (
        f'name = "{name}"\nruntimes = ["onnxruntime"]\n{top}\n'
        f"[dataset]\nimage_size = 8\n{dataset}\n"
        f"[model]\nchannels = [8, 8, 8, 8, 8]\n[train]\nepochs = {epochs}\n{sections}\n"
        f'[measure]\nprofile = "quick"\n{measure}\n'
    )
