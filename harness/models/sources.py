"""Where the baseline comes from, named by ``[model] name`` (classified by :mod:`harness.model_names`).

* a zoo name (``small-cnn``, ``resnet20``, ``resnet56``, ``resnet18``, ``mobilenet-v2``);
* ``torchvision:NAME`` / ``timm:NAME`` when those packages are installed (built with the
  dataset's class count, never downloaded: trained here, or given a ``checkpoint``);
* ``package.module:factory``: a user's function returning an ``nn.Module``; it is passed
  ``num_classes`` / ``n_classes`` / ``in_channels`` / ``in_chans`` when its signature takes them,
  and ``[model] options`` as keyword arguments;
* a ``.pt2`` file (a ``torch.export`` program) or a ``.onnx`` file: fixed artifacts, so only
  quantization and runtime variants apply to them.

Every module-building source is then checked against the dataset with one forward pass (its
output must be one logit per class). ``checkpoint`` loads a state_dict with
``torch.load(weights_only=True)``: a pickle that would run code is refused, never executed.
The dense model a run starts from is put together in :mod:`harness.models.baseline`.
"""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, InputError, MissingDependency, first_line
from harness.model_names import FILE_SOURCES, PACKAGE_SOURCES, is_fixed_artifact, source_kind  # noqa: F401 - re-exported
from harness.registry import Registry

if TYPE_CHECKING:
    from harness.config import ModelSpec
    from harness.data.base import Dataset

#: source kind -> ``builder(spec, dataset) -> nn.Module`` (the ONNX source has no module)
SOURCES: Registry = Registry("model source")
SOURCES.register("zoo", "harness.models.sources:build_zoo")
SOURCES.register("torchvision", "harness.models.sources:build_torchvision")
SOURCES.register("timm", "harness.models.sources:build_timm")
SOURCES.register("module", "harness.models.sources:build_from_factory")
SOURCES.register("exported-program", "harness.models.sources:load_exported_program")

#: what the CLI prints and the report notes when a fixed artifact meets pruning variants
FIXED_ARTIFACT_NOTE = (
    "the model is {what} ({name}): only quantization and runtime variants apply; "
    "pruning / fine-tuning variants skipped: {skipped}"
)


def _existing(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"{what} not found: {p}")
    return p


# ---------------------------------------------------------------------------- builders


def _call_factory(factory, spec: ModelSpec, dataset: Dataset, label: str):
    """Call ``factory`` with the dataset's class / channel counts where its signature takes them."""
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    adapt = {"num_classes": dataset.n_classes, "n_classes": dataset.n_classes,
             "in_channels": dataset.input_shape[0], "in_chans": dataset.input_shape[0]}
    kwargs: dict[str, Any] = {k: v for k, v in adapt.items() if k in params}
    if takes_any and not kwargs:
        kwargs = {"num_classes": dataset.n_classes}
    kwargs.update(spec.options)
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {label}: {type(exc).__name__}: {exc}") from None


def build_zoo(spec: ModelSpec, dataset: Dataset):
    from harness.models import MODELS

    factory = MODELS.get(spec.name)
    try:
        return factory(in_channels=dataset.input_shape[0], n_classes=dataset.n_classes, channels=spec.channels,
                       **spec.options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {spec.name}: {exc}") from None


def _import_package(module: str, package: str, purpose: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(package, purpose=purpose) from None
    except Exception as exc:  # noqa: BLE001 - an install that cannot be imported is as good as missing
        raise MissingDependency(package, purpose=f"{purpose}; importing it failed: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def build_torchvision(spec: ModelSpec, dataset: Dataset):
    """``torchvision:NAME``: ``torchvision.models.get_model(NAME, weights=None, num_classes=...)``."""
    name = spec.name.partition(":")[2]
    models = _import_package("torchvision.models", "torchvision", f"model {spec.name}")
    available = set(models.list_models()) if hasattr(models, "list_models") else None
    if available is not None and name not in available:
        raise ConfigError(f"model {spec.name}: torchvision has no model {name!r}")
    kwargs = {"weights": None, "num_classes": dataset.n_classes, **spec.options}
    try:
        return models.get_model(name, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {spec.name}: {exc}") from None


def build_timm(spec: ModelSpec, dataset: Dataset):
    """``timm:NAME``: ``timm.create_model(NAME, pretrained=False, num_classes=..., in_chans=...)``."""
    name = spec.name.partition(":")[2]
    timm = _import_package("timm", "timm", f"model {spec.name}")
    if hasattr(timm, "is_model") and not timm.is_model(name):
        raise ConfigError(f"model {spec.name}: timm has no model {name!r}")
    kwargs = {"pretrained": False, "num_classes": dataset.n_classes, "in_chans": dataset.input_shape[0], **spec.options}
    try:
        return timm.create_model(name, **kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"model {spec.name}: {exc}") from None


def build_from_factory(spec: ModelSpec, dataset: Dataset):
    """``package.module:factory``, imported from the Python path (the current directory included)."""
    import sys

    module_name, _, attr = spec.name.partition(":")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # `harness run --model mymodels:net` finds ./mymodels.py, as `python -m` would
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"model {spec.name}: cannot import {module_name!r}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"model {spec.name}: {module_name!r} has no callable {attr!r}")
    return _call_factory(factory, spec, dataset, spec.name)


def load_exported_program(spec: ModelSpec, dataset: Dataset):
    """A ``.pt2`` program's module (used to validate it; its file is deployed as it is)."""
    from harness.export.pt2 import load_program

    return load_program(_existing(spec.name, "exported program")).module()


# ---------------------------------------------------------------------------- checks


def check_fits(model, dataset: Dataset, label: str) -> None:
    """One forward pass on an evaluation image: the model must take it and give one logit per class."""
    import torch

    x = torch.from_numpy(dataset.evaluation.x[:1])
    was_training = getattr(model, "training", False)
    try:
        if was_training:
            model.eval()
    except NotImplementedError:  # an exported program's module has no train / eval switch
        was_training = False
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as exc:  # noqa: BLE001 - the user's model, whatever it raises
        raise InputError(f"model {label} does not take the dataset's input (1, {', '.join(map(str, x.shape[1:]))}): "
                         f"{type(exc).__name__}: {first_line(exc)}") from None
    finally:
        if was_training:
            model.train()
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, dataset.n_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InputError(f"model {label} gives {shape} for one image; the dataset has {dataset.n_classes} classes, "
                         f"so (1, {dataset.n_classes}) is expected")


#: a protobuf message (one .onnx file) holds at most 2 GiB; above that the weights stay in a side file
ONNX_EMBED_LIMIT = 2**31 - 1


def _read_onnx_graph(path: Path):
    """The ONNX model at ``path`` without its external data (never read here)."""
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"ONNX file {path} cannot be read (truncated or not ONNX): {first_line(exc)}") from None


def onnx_external_files(path: Path, model=None) -> list[Path]:
    """The side files holding the ONNX model's external data, each checked to lie in the model's folder.

    A location that is absolute or leads out of the folder (``..``, a symlink) is refused without
    being read, as is one that does not exist.
    """
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

    model = model if model is not None else _read_onnx_graph(path)
    folder = path.parent.resolve()
    files: dict[Path, None] = {}
    for tensor in _get_all_tensors(model):
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
            raise InputError(f"ONNX file {path}: external data location {location!r} of tensor {tensor.name!r} "
                             f"is outside the model's folder {folder}; it is not read")
        if not target.is_file():
            raise InputError(f"ONNX file {path}: external data file {folder / location} not found "
                             f"(tensor {tensor.name!r}); keep it next to the model")
        files[target] = None
    return list(files)


def copy_onnx_model(source: Path, destination: Path) -> None:
    """Copy an ONNX model with its external data: embedded when it fits in one file, else a side file next to it."""
    import onnx

    external = onnx_external_files(source)
    if not external:
        shutil.copyfile(source, destination)
        return
    model = onnx.load(str(source), load_external_data=True)
    size = source.stat().st_size + sum(f.stat().st_size for f in external)
    if size < ONNX_EMBED_LIMIT:
        onnx.save_model(model, str(destination))
    else:
        onnx.save_model(model, str(destination), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=destination.name + ".data")


def check_onnx_fits(path: Path, dataset: Dataset) -> None:
    """The ONNX file's input (C, H, W) must be the dataset's and its output one logit per class."""
    model = _read_onnx_graph(path)
    onnx_external_files(path, model)
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise InputError(f"ONNX file {path} has {len(inputs)} inputs; an image classifier takes exactly one")

    def dims(value) -> list[int | None]:
        return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]

    got, want = dims(inputs[0]), [None, *dataset.input_shape]
    if len(got) != len(want) or any(g is not None and g != w for g, w in zip(got[1:], want[1:], strict=False)):
        shown = ", ".join("?" if g is None else str(g) for g in got)
        raise InputError(
            f"ONNX file {path} takes input {inputs[0].name!r} of shape ({shown}), but the dataset gives images of "
            f"(C, H, W) = {tuple(dataset.input_shape)}: set dataset.image_size / dataset.channels to match"
        )
    if model.graph.output:
        out = dims(model.graph.output[0])
        if out and out[-1] is not None and out[-1] != dataset.n_classes:
            raise InputError(f"ONNX file {path} outputs {out[-1]} logits; the dataset has {dataset.n_classes} classes")


# ---------------------------------------------------------------------------- checkpoints


CHECKPOINT_WRAPPERS = ("state_dict", "model_state_dict")


def read_state_dict(path: Path) -> dict[str, Any]:
    """A state_dict from ``path`` (bare or under ``state_dict`` / ``model_state_dict``), weights only."""
    import pickle
    import zipfile

    import torch

    path = _existing(str(path), "checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch words the refusal differently across releases ("Unsupported global: GLOBAL x", "unsupported
        # GLOBAL x whose module y is blocked"); either way the file pickles an object beyond tensors
        found = re.search(r"GLOBAL ([\w.]+)", str(exc), flags=re.IGNORECASE)
        if found:
            raise InputError(
                f"checkpoint {path} was refused: it pickles {found.group(1)}, a Python object beyond tensors that "
                "could run code, and checkpoints are loaded with weights_only=True (nothing was executed)",
                hint="save model.state_dict() instead; the harness never loads a checkpoint with weights_only=False",
            ) from None
        reason = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))  # torch's advice around it is left out
        raise InputError(f"checkpoint {path} is truncated or corrupt: "
                         f"{reason.group(1).strip() if reason else 'not a pickle the weights-only loader reads'}") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise InputError(f"checkpoint {path} is truncated or corrupt: {first_line(exc)}") from None
    if isinstance(obj, dict):
        for key in CHECKPOINT_WRAPPERS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(
            f"checkpoint {path} is not a state_dict (a mapping of parameter names to tensors, bare or under "
            f"{' / '.join(CHECKPOINT_WRAPPERS)})"
        )
    if all(k.startswith("module.") for k in obj):  # saved from DataParallel / DistributedDataParallel
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return obj


def _few(names: list[str], n: int = 3) -> str:
    shown = ", ".join(names[:n])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > n else shown


def load_checkpoint(model, path: Path, label: str):
    """Load ``path`` into ``model``; a checkpoint of another architecture names what does not fit."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {list(state[k].shape)} vs {list(own[k].shape)}"
        for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches (checkpoint vs model): {_few(mismatched)}")
        if missing:
            parts.append(f"{len(missing)} missing keys: {_few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_few(unexpected)}")
        raise InputError(f"checkpoint {path} does not fit model {label}: {'; '.join(parts)}")
    model.load_state_dict(state)
    return model.eval()
