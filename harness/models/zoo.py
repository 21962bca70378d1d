"""The project's own reference models, built in code (no downloads)."""

from __future__ import annotations

import functools


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


@functools.cache
def _basic_block():
    """ResNet's basic block (two 3x3 conv-BN, ReLU after the sum); a 1x1 conv-BN projection
    shortcut where the block changes resolution or width. Built on first use (torch is lazy)."""
    import torch.nn as nn

    class BasicBlock(nn.Module):
        def __init__(self, i: int, o: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(o)
            self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(o)
            self.relu = nn.ReLU(inplace=True)
            self.shortcut = nn.Sequential()
            if stride != 1 or i != o:
                self.shortcut = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    return BasicBlock


def resnet18(in_channels: int, n_classes: int, channels: list[int] | None = None, stem: str = "cifar"):
    """ResNet-18 (four stages of two basic blocks; torchvision's layout, built here, no download).

    ``stem="cifar"`` (the registered default) is a 3x3 stride-1 convolution without max-pool, the
    usual layout for 32x32 inputs (~0.56 GMACs at 32x32, 11.2 M parameters with the default widths
    64, 128, 256, 512); ``stem="imagenet"`` is the 7x7 stride-2 convolution plus 3x3 max-pool of the
    original (~1.8 GMACs at 224x224). ``channels`` overrides the four stage widths.
    """
    import torch.nn as nn

    widths = channels or [64, 128, 256, 512]
    if len(widths) != 4:
        raise ValueError(f"resnet18 takes 4 stage widths, got {widths}")

    BasicBlock = _basic_block()
    if stem == "cifar":
        layers = [nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
    elif stem == "imagenet":
        layers = [
            nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        ]
    else:
        raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
    previous = widths[0]
    for stage, width in enumerate(widths):
        for block in range(2):
            layers.append(BasicBlock(previous, width, 2 if stage > 0 and block == 0 else 1))
            previous = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(previous, n_classes)]
    return nn.Sequential(*layers)


def _cifar_resnet(depth: int, in_channels: int, n_classes: int, channels: list[int] | None):
    """He et al. 2016, section 4.2: a 3x3 stem, then 3 stages of n = (depth - 2) / 6 basic blocks.

    Shortcuts are option B: identity where the shape is kept, a 1x1 convolution + BN
    projection where a stage halves the resolution and widens. (The paper's CIFAR nets used
    option A, identity with zero-padded channels; option B adds ~2.6 k parameters to ResNet-20
    and is used here because torch-pruning's dependency graph and ONNX export both handle a
    projection exactly, while a zero-padding shortcut ties channel indices across stages.)
    """
    import torch.nn as nn

    widths = channels or [16, 32, 64]
    if len(widths) != 3:
        raise ValueError(f"resnet{depth} takes 3 stage widths, got {widths}")
    n = (depth - 2) // 6

    BasicBlock = _basic_block()
    layers = [nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
    previous = widths[0]
    for stage, width in enumerate(widths):
        for block in range(n):
            layers.append(BasicBlock(previous, width, 2 if stage > 0 and block == 0 else 1))
            previous = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(previous, n_classes)]
    return nn.Sequential(*layers)


def resnet20(in_channels: int, n_classes: int, channels: list[int] | None = None):
    """CIFAR ResNet-20 (3 x 3 basic blocks, widths 16/32/64; ~41 MMACs and 0.27 M parameters at 32x32)."""
    return _cifar_resnet(20, in_channels, n_classes, channels)


def resnet56(in_channels: int, n_classes: int, channels: list[int] | None = None):
    """CIFAR ResNet-56 (3 x 9 basic blocks, widths 16/32/64; ~127 MMACs and 0.86 M parameters at 32x32)."""
    return _cifar_resnet(56, in_channels, n_classes, channels)


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round a width to a multiple of ``divisor``, never below 90 % of ``v`` (MobileNet's rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mobilenet_v2(
    in_channels: int, n_classes: int, channels: list[int] | None = None, width: float = 1.0, stem: str = "cifar"
):
    """MobileNetV2 (Sandler et al. 2018): inverted residual blocks with linear bottlenecks.

    ``width`` is the width multiplier (every layer's channels x ``width``, rounded to a multiple
    of 8; the last 1280-channel layer is only ever widened). ``stem="cifar"`` (the default) uses
    stride 1 in the first convolution and in the second stage, so a 32x32 input reaches the head
    at 4x4 instead of 1x1 (the usual CIFAR adaptation); ``stem="imagenet"`` keeps the paper's
    strides (total stride 32, for 224x224 inputs). ``channels`` is not used: scale with ``width``.
    ~93 MMACs and 2.2 M parameters at 32x32 with width 1 and 10 classes.
    """
    import torch.nn as nn

    if channels is not None:
        raise ValueError("mobilenet-v2 is scaled with options.width, not channels")
    if stem not in ("cifar", "imagenet"):
        raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    # t (expansion), c (channels), n (blocks), s (stride of the first block)
    settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
    first_stride = 2
    if stem == "cifar":
        settings[1][3] = 1
        first_stride = 1

    def conv_bn(i: int, o: int, k: int, s: int, groups: int = 1, act: bool = True) -> list:
        layers = [nn.Conv2d(i, o, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(o)]
        return layers + ([nn.ReLU6(inplace=True)] if act else [])

    class InvertedResidual(nn.Module):
        def __init__(self, i: int, o: int, stride: int, expand: int) -> None:
            super().__init__()
            hidden = int(round(i * expand))
            layers = conv_bn(i, hidden, 1, 1) if expand != 1 else []
            layers += conv_bn(hidden, hidden, 3, stride, groups=hidden) + conv_bn(hidden, o, 1, 1, act=False)
            self.block = nn.Sequential(*layers)
            self.residual = stride == 1 and i == o

        def forward(self, x):
            return x + self.block(x) if self.residual else self.block(x)

    previous = _make_divisible(32 * width)
    last = _make_divisible(1280 * max(1.0, width))
    layers = conv_bn(in_channels, previous, 3, first_stride)
    for t, c, n, s in settings:
        out = _make_divisible(c * width)
        for k in range(n):
            layers.append(InvertedResidual(previous, out, s if k == 0 else 1, t))
            previous = out
    layers += conv_bn(previous, last, 1, 1)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(last, n_classes)]
    return nn.Sequential(*layers)
