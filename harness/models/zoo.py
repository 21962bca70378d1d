"""The project's own reference models, built in code (no downloads)."""

from __future__ import annotations


def small_cnn(in_channels: int, n_classes: int, channels: list[int] | None = None):
    """Five 3x3 conv-BN-ReLU blocks with two max-pools, global average pool, linear head.

    ~30 MMACs at 32x32 with the default widths (32, 32, 64, 64, 128): small enough to
    train on a CPU in seconds, large enough that int8 and channel pruning change latency.
    """
    import torch.nn as nn

    c1, c2, c3, c4, c5 = channels or [32, 32, 64, 64, 128]

    def block(i: int, o: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

    return nn.Sequential(
        block(in_channels, c1),
        block(c1, c2),
        nn.MaxPool2d(2),
        block(c2, c3),
        block(c3, c4),
        nn.MaxPool2d(2),
        block(c4, c5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c5, n_classes),
    )
