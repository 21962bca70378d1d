"""scikit-learn's bundled digits (1797 8x8 images, 10 classes): the embedded default.

The training split can be made long-tailed: the classes named in ``long_tail`` keep
only a fraction of their *training* images, reproducing the seed papers' setting in
which compression hurts rare classes first. Calibration and evaluation splits are
untouched, so every class is scored on the same footing.
"""

from __future__ import annotations

import numpy as np

from harness.config import DatasetSpec
from harness.data.base import Dataset, Split, stratified_split
from harness.errors import ConfigError


def load_digits_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = raw.images.astype(np.float32) / 16.0  # 0..16 -> 0..1
    labels = raw.target.astype(np.int64)
    class_names = [str(c) for c in range(10)]

    x = images[:, None, :, :]
    if spec.image_size is not None and spec.image_size != x.shape[-1]:
        x = _resize(x, spec.image_size)
    x = ((x - spec.mean) / spec.std).astype(np.float32)

    parts = stratified_split(
        labels,
        {"train": spec.split.train, "calibration": spec.split.calibration, "evaluation": spec.split.evaluation},
        seed,
    )
    under: list[str] = []
    if spec.long_tail is not None:
        bad = [c for c in spec.long_tail.classes if not 0 <= c < len(class_names)]
        if bad:
            raise ConfigError(f"dataset.long_tail.classes: {bad} not in 0..{len(class_names) - 1}")
        rng = np.random.default_rng(seed + 1)
        keep = []
        for idx in [parts["train"][labels[parts["train"]] == c] for c in range(len(class_names))]:
            cls = int(labels[idx[0]])
            if cls in spec.long_tail.classes:
                n = max(1, int(round(spec.long_tail.keep_fraction * len(idx))))
                idx = np.sort(rng.choice(idx, size=n, replace=False))
            keep.append(idx)
        parts["train"] = np.sort(np.concatenate(keep))
        under = [class_names[c] for c in sorted(spec.long_tail.classes)]

    def split(name: str) -> Split:
        idx = parts[name]
        return Split(name, x[idx], labels[idx], idx)

    return Dataset(
        name="digits",
        class_names=class_names,
        train=split("train"),
        calibration=split("calibration"),
        evaluation=split("evaluation"),
        under_represented=under,
        preprocessing={
            "source_size": [8, 8],
            "resize": spec.image_size,
            "resize_mode": "bilinear",
            "scale": "pixel / 16",
            "mean": spec.mean,
            "std": spec.std,
        },
        description="scikit-learn bundled handwritten digits (UCI ML hand-written digits, 1797 images)",
    )


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        out = F.interpolate(torch.from_numpy(x), size=(size, size), mode="bilinear", align_corners=False)
    return out.numpy()
