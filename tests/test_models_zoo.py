"""The zoo's CIFAR-style models: shapes, size, ONNX export and channel pruning on small inputs."""

from __future__ import annotations

import numpy as np
import pytest

from harness.config import ModelSpec
from harness.data.base import build_dataset
from harness.progress import ProgressReporter


def random_dataset(channels: int = 3, size: int = 16, n_classes: int = 4, n: int = 24):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, channels, size, size)).astype(np.float32)
    y = np.arange(n, dtype=np.int64) % n_classes
    parts = {"train": np.arange(0, 12), "calibration": np.arange(12, 16), "evaluation": np.arange(16, n)}
    return build_dataset("random", x, y, parts, [str(c) for c in range(n_classes)])


@pytest.mark.parametrize(
    ("name", "params"),
    [("resnet20", 272_474), ("resnet56", 855_770)],
)
def test_cifar_resnets_have_the_papers_depth_and_size(name, params):
    import torch.nn as nn

    from harness.models import MODELS

    model = MODELS.get(name)(in_channels=3, n_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == int(name.removeprefix("resnet"))  # 3x3 convs + the classifier = depth
    assert sum(p.numel() for p in model.parameters()) == params  # option-B: two 1x1 projections added
    assert [m.out_channels for m in convs][-1] == 64


def test_mobilenet_v2_width_multiplier_scales_channels_and_cifar_stem_keeps_resolution():
    import torch

    from harness.models import MODELS

    factory = MODELS.get("mobilenet-v2")
    full = factory(in_channels=3, n_classes=10)
    half = factory(in_channels=3, n_classes=10, width=0.5)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(half) < 0.6 * count(full)
    assert full(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    features = torch.nn.Sequential(*list(full.children())[:-4])
    assert features(torch.zeros(1, 3, 32, 32)).shape[-1] == 4  # total stride 8 on CIFAR inputs
    imagenet = torch.nn.Sequential(*list(factory(3, 10, stem="imagenet").children())[:-4])
    assert imagenet(torch.zeros(1, 3, 64, 64)).shape[-1] == 2  # total stride 32


SMALL = [
    ModelSpec(name="resnet20", channels=[8, 16, 16]),
    ModelSpec(name="resnet56", channels=[8, 8, 8]),
    ModelSpec(name="mobilenet-v2", options={"width": 0.25}),
]


def _pruned(spec):
    from harness.compress.prune import channel_prune
    from harness.models.train import build_model

    dataset = random_dataset()
    model = build_model(spec, dataset).eval()
    return dataset, model, channel_prune(model, 0.5, {"finetune_epochs": 0, "round_to": 4}, dataset, 0,
                                         ProgressReporter(), "t")


@pytest.mark.parametrize("spec", SMALL, ids=lambda s: s.name)
def test_zoo_models_prune_by_channel_with_torch_pruning(spec):
    import torch

    dataset, model, pruned = _pruned(spec)
    assert pruned.params_after < pruned.params_before and pruned.macs_after < pruned.macs_before
    with torch.no_grad():
        assert pruned.model(torch.from_numpy(dataset.evaluation.x)).shape == (8, 4)


@pytest.mark.slow  # the dynamo ONNX exporter takes 10-35 s per model on a shared 2-core CPU
@pytest.mark.parametrize("spec", SMALL[::2], ids=lambda s: s.name)
def test_zoo_models_dense_and_channel_pruned_export_to_onnx_with_parity(spec, tmp_path):
    import onnxruntime as ort

    from harness.export.onnx import export_onnx, export_program
    from harness.models.train import predict_logits

    dataset, model, pruned = _pruned(spec)
    x = dataset.evaluation.x
    for m, name in ((model, "dense"), (pruned.model, "pruned")):
        program = export_program(m, x[:1], tmp_path / f"{name}.pt2")
        export_onnx(program, x[:1], tmp_path / f"{name}.onnx")
        session = ort.InferenceSession(str(tmp_path / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, predict_logits(m, x), atol=1e-4, rtol=1e-3)


def test_zoo_options_that_a_model_does_not_take_are_config_errors_naming_the_model():
    from harness.errors import ConfigError
    from harness.models.train import build_model

    with pytest.raises(ConfigError, match="resnet20.*width"):
        build_model(ModelSpec(name="resnet20", options={"width": 0.5}), random_dataset())
