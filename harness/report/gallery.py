"""The CIE audit: a ranked CSV per compressed variant and an image grid of the top examples.

This is the human-in-the-loop tool Hooker et al. propose: the examples on which the
compressed population and the dense population disagree, most disagreement first.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

GALLERY_SIZE = 16


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row)) or ["rank", "sample_index", "label"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_cie_gallery(rows: list[dict[str, Any]], images: np.ndarray, path: Path, *, title: str) -> Path:
    """Grid of the top-ranked CIE images with label, dense and compressed modal predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = rows[:GALLERY_SIZE]
    cols = min(8, len(top))
    nrows = -(-len(top) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(1.6 * cols, 1.9 * nrows), squeeze=False)
    try:
        for ax in axes.flat:
            ax.axis("off")
        for ax, row in zip(axes.flat, top, strict=False):
            img = images[row["position"]]
            img = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
            lo, hi = float(img.min()), float(img.max())
            ax.imshow((img - lo) / (hi - lo) if hi > lo else img * 0, cmap="gray" if img.ndim == 2 else None)
            ax.set_title(
                f"#{row['rank']} y={row['label']}\ndense {row['dense_modal']} / comp {row['compressed_modal']}",
                fontsize=7,
            )
        fig.suptitle(f"{title} (top {len(top)} of {len(rows)} by taxicab score)", fontsize=9)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
