"""Model zoo, loaders and training of baselines."""

from harness.registry import Registry

MODELS = Registry("model")
MODELS.register("small-cnn", "harness.models.zoo:small_cnn")
MODELS.register("resnet18", "harness.models.zoo:resnet18")
