"""scikit-learn's bundled digits (1797 8x8 images, 10 classes): the embedded default.

The training split can be made long-tailed: the classes named in ``long_tail`` keep
only a fraction of their *training* images, reproducing the seed papers' setting in
which compression hurts rare classes first. Calibration and evaluation splits are
untouched, so every class is scored on the same footing.
"""

from __future__ import annotations

import numpy as np

from harness.config import DatasetSpec
from harness.data.base import (
    Dataset,
    apply_long_tail,
    build_dataset,
    check_spec,
    split_fractions,
    stratified_split,
)
from harness.data.preprocess import convert_channels, resize


def load_digits_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    from harness import deps

    deps.require("sklearn", "build", "the digits dataset")
    from sklearn.datasets import load_digits

    check_spec(spec, "digits", path=False)
    raw = load_digits()
    images = raw.images.astype(np.float32) / 16.0  # 0..16 -> 0..1
    labels = raw.target.astype(np.int64)
    class_names = [str(c) for c in range(10)]

    x, conversion = convert_channels(images[:, None, :, :], spec.channels)
    if spec.image_size is not None and spec.image_size != x.shape[-1]:
        x = resize(x, spec.image_size)
    x = ((x - spec.mean) / spec.std).astype(np.float32)

    parts = stratified_split(labels, split_fractions(spec), seed)
    parts["train"], under = apply_long_tail(parts["train"], labels, spec.long_tail, class_names, seed)
    preprocessing = {
        "source_size": [8, 8],
        "resize": spec.image_size,
        "resize_mode": "bilinear",
        "scale": "pixel / 16",
        "mean": spec.mean,
        "std": spec.std,
    }
    if conversion is not None:
        preprocessing.update(channels=x.shape[1], channel_conversion=conversion)
    return build_dataset(
        "digits",
        x,
        labels,
        parts,
        class_names,
        under_represented=under,
        preprocessing=preprocessing,
        description="scikit-learn bundled handwritten digits (UCI ML hand-written digits, 1797 images)",
    )
