"""Model zoo, loaders and training of baselines."""

from collections.abc import Callable
from typing import Any

from harness.registry import Registry

MODELS: Registry[Callable[..., Any]] = Registry("model")
MODELS.register("small-cnn", "harness.models.zoo:small_cnn")
MODELS.register("resnet18", "harness.models.zoo:resnet18")
MODELS.register("resnet20", "harness.models.zoo:resnet20")
MODELS.register("resnet56", "harness.models.zoo:resnet56")
MODELS.register("mobilenet-v2", "harness.models.zoo:mobilenet_v2")
