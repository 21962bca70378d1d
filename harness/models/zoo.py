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
