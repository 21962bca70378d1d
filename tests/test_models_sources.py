"""Model sources: torchvision / timm by name (fakes), a user's factory, checkpoints and their failures."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from harness.config import ModelSpec, TrainSpec
from harness.errors import ConfigError, InputError, MissingDependency
from harness.models.baseline import load_baseline
from harness.models.sources import read_state_dict, source_kind
from harness.progress import ProgressReporter
from tests.conftest import TINY_CHANNELS


def tiny_net(n_classes: int, in_channels: int = 1):
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, n_classes))


def baseline_of(spec: ModelSpec, dataset, tmp_path: Path):
    return load_baseline(spec, TrainSpec(epochs=1), dataset, "digits-8x8", 0, tmp_path / "cache", ProgressReporter())


@pytest.mark.parametrize(
    ("name", "kind"),
    [("small-cnn", "zoo"), ("torchvision:resnet18", "torchvision"), ("timm:resnet18", "timm"),
     ("mypkg.nets:build", "module"), ("out/model.pt2", "exported-program"), ("/a/b/Model.ONNX", "onnx")],
)
def test_the_model_name_says_where_the_model_comes_from(name, kind):
    assert source_kind(name) == kind


@pytest.fixture
def fake_torchvision(monkeypatch):
    """A stand-in for torchvision.models with get_model / list_models; records the keyword arguments."""
    calls = []
    models = types.ModuleType("torchvision.models")  # the fake, registered under the real name
    models.list_models = lambda: ["fakenet"]

    def get_model(name, **kwargs):
        calls.append((name, kwargs))
        return tiny_net(kwargs["num_classes"])

    models.get_model = get_model
    package = types.ModuleType("torchvision")
    package.models = models
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    return calls


def test_torchvision_models_are_built_with_the_datasets_class_count_and_no_weights(fake_torchvision, tiny_dataset, tmp_path):
    from harness.models.train import build_model

    model = build_model(ModelSpec(name="torchvision:fakenet"), tiny_dataset)
    assert fake_torchvision == [("fakenet", {"weights": None, "num_classes": 10})]
    assert model[-1].out_features == 10
    with pytest.raises(ConfigError, match="torchvision has no model 'nosuchnet'"):
        build_model(ModelSpec(name="torchvision:nosuchnet"), tiny_dataset)


def test_timm_models_get_class_and_channel_counts(monkeypatch, tiny_dataset):
    from harness.models.train import build_model

    calls = []
    fake_timm = types.ModuleType("timm")  # the fake, registered under the real name
    fake_timm.is_model = lambda name: name == "fakenet"
    fake_timm.create_model = lambda name, **kw: calls.append(kw) or tiny_net(kw["num_classes"], kw["in_chans"])
    monkeypatch.setitem(sys.modules, "timm", fake_timm)
    build_model(ModelSpec(name="timm:fakenet", options={"drop_rate": 0.1}), tiny_dataset)
    assert calls == [{"pretrained": False, "num_classes": 10, "in_chans": 1, "drop_rate": 0.1}]


@pytest.mark.parametrize("name", ["torchvision:resnet18", "timm:resnet18"])
def test_a_missing_package_is_a_missing_dependency_with_exit_code_3(monkeypatch, tiny_dataset, name):
    from harness.models.train import build_model

    for module in ("torchvision", "torchvision.models", "timm"):
        monkeypatch.setitem(sys.modules, module, None)  # import of a None entry raises ImportError
    with pytest.raises(MissingDependency, match=name.split(":")[0]) as err:
        build_model(ModelSpec(name=name), tiny_dataset)
    assert err.value.exit_code == 3 and "pip install" in err.value.hint


def test_a_users_factory_gets_the_class_count_its_signature_asks_for(tmp_path, monkeypatch, tiny_dataset):
    from harness.models.train import build_model

    (tmp_path / "user_nets.py").write_text(
        "import torch.nn as nn\n"
        "def good(num_classes, hidden=4):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))\n"
        "def fixed():\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build_model(ModelSpec(name="user_nets:good", options={"hidden": 6}), tiny_dataset)
    assert model[1].out_features == 6 and model[-1].out_features == 10
    with pytest.raises(InputError, match=r"user_nets:fixed gives \(1, 3\).*10 classes"):
        build_model(ModelSpec(name="user_nets:fixed"), tiny_dataset)
    with pytest.raises(ConfigError, match="no callable 'absent'"):
        build_model(ModelSpec(name="user_nets:absent"), tiny_dataset)


def _tiny_state(tiny_dataset):
    from harness.models.train import build_model

    return build_model(ModelSpec(channels=TINY_CHANNELS), tiny_dataset).state_dict()


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model_state_dict"])
def test_a_checkpoint_is_loaded_instead_of_training(wrapper, tiny_dataset, tmp_path):
    import torch

    state = _tiny_state(tiny_dataset)
    path = tmp_path / "weights.pt"
    torch.save(state if wrapper is None else {wrapper: state, "epoch": 3}, path)
    baseline = baseline_of(ModelSpec(channels=TINY_CHANNELS, checkpoint=str(path)), tiny_dataset, tmp_path)
    assert baseline.origin == "checkpoint weights.pt" and not baseline.fixed
    assert all(torch.equal(v, baseline.model.state_dict()[k]) for k, v in state.items())
    assert not (tmp_path / "cache").exists()  # nothing was trained


class WouldRunCode:
    """Unpickling this object would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_pickle_that_would_run_code_is_refused_and_never_executed(tmp_path):
    import torch

    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": WouldRunCode(marker)}, path)
    with pytest.raises(InputError) as err:
        read_state_dict(path)
    assert not marker.exists()
    assert str(path) in str(err.value) and "weights_only" in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_a_truncated_checkpoint_is_named_as_truncated_or_corrupt(tiny_dataset, tmp_path):
    import torch

    path = tmp_path / "weights.pt"
    torch.save(_tiny_state(tiny_dataset), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=f"checkpoint {path} is truncated or corrupt"):
        baseline_of(ModelSpec(channels=TINY_CHANNELS, checkpoint=str(path)), tiny_dataset, tmp_path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="junk.pt is truncated or corrupt"):
        read_state_dict(tmp_path / "junk.pt")


def test_a_checkpoint_of_another_architecture_names_mismatched_keys_and_shapes(tiny_dataset, tmp_path):
    import torch

    from harness.models.train import build_model

    other = tmp_path / "resnet20.pt"
    torch.save(build_model(ModelSpec(name="resnet20", channels=[4, 4, 4]), tiny_dataset).state_dict(), other)
    with pytest.raises(InputError) as err:
        baseline_of(ModelSpec(channels=TINY_CHANNELS, checkpoint=str(other)), tiny_dataset, tmp_path)
    msg = str(err.value)
    assert f"checkpoint {other} does not fit model small-cnn" in msg
    assert "missing keys: 0.0.weight" in msg and "unexpected keys" in msg and "in all)" in msg

    wider = tmp_path / "wider.pt"
    torch.save(build_model(ModelSpec(channels=[8, 8, 16, 16, 32]), tiny_dataset).state_dict(), wider)
    with pytest.raises(InputError, match=r"shape mismatches \(checkpoint vs model\): 6\.0\.weight \[32, 16, 3, 3\] vs \[16, 16, 3, 3\]"):
        baseline_of(ModelSpec(channels=TINY_CHANNELS, checkpoint=str(wider)), tiny_dataset, tmp_path)


def test_a_missing_checkpoint_or_model_file_is_an_input_error(tiny_dataset, tmp_path):
    with pytest.raises(InputError, match="checkpoint not found: .*nope.pt"):
        baseline_of(ModelSpec(checkpoint=str(tmp_path / "nope.pt")), tiny_dataset, tmp_path)
    with pytest.raises(InputError, match="ONNX model not found"):
        baseline_of(ModelSpec(name=str(tmp_path / "nope.onnx")), tiny_dataset, tmp_path)


def test_an_onnx_model_whose_input_does_not_match_the_dataset_is_refused(tiny_onnx, tmp_path):
    from harness.config import DatasetSpec
    from harness.data.digits import load_digits_dataset

    dataset_16 = load_digits_dataset(DatasetSpec(image_size=16), seed=0)
    with pytest.raises(InputError) as err:
        baseline_of(ModelSpec(name=str(tiny_onnx)), dataset_16, tmp_path)
    assert str(tiny_onnx) in str(err.value) and "(1, 16, 16)" in str(err.value) and "(?, 1, 8, 8)" in str(err.value)


def test_an_onnx_model_that_fits_is_the_fixed_dense_baseline(tiny_onnx, tiny_dataset, tmp_path):
    baseline = baseline_of(ModelSpec(name=str(tiny_onnx)), tiny_dataset, tmp_path)
    assert baseline.fixed and baseline.model is None and baseline.origin == "onnx file"


def test_a_population_needs_trainable_models_and_a_file_takes_no_checkpoint():
    from harness.config import ExperimentSpec

    with pytest.raises(ValueError, match="population = 3 trains K seeds"):
        ExperimentSpec(population=3, model={"checkpoint": "w.pt"})
    with pytest.raises(ValueError, match="carries its own weights"):
        ExperimentSpec(model={"name": "m.onnx", "checkpoint": "w.pt"})
    with pytest.raises(ValueError, match="channels sets a zoo model"):
        ExperimentSpec(model={"name": "timm:resnet18", "channels": [4]})
    ExperimentSpec(model={"name": "torchvision:whatever"})  # resolved when the run loads it, not at validation


def test_an_exported_program_is_a_fixed_baseline_and_a_corrupt_one_is_named(tiny_onnx, tiny_dataset, tmp_path):
    program = tiny_onnx.with_suffix(".pt2")  # written beside the ONNX file by the fixture
    baseline = baseline_of(ModelSpec(name=str(program)), tiny_dataset, tmp_path)
    assert baseline.fixed and baseline.kind == "exported-program" and baseline.file == program
    broken = tmp_path / "broken.pt2"
    broken.write_bytes(program.read_bytes()[:200])
    with pytest.raises(InputError, match=f"exported program {broken} cannot be loaded"):
        baseline_of(ModelSpec(name=str(broken)), tiny_dataset, tmp_path)
