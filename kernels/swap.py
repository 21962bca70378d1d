"""Turn a trained model's Linear / Conv2d layers into this package's int8 and 2:4 modules.

``swap_modules(model, mode)`` changes ``model`` in place and returns a :class:`SwapReport` that
says, layer by layer, what each became and why. Modes:

- ``"int8"``: every eligible layer becomes :class:`Int8Linear` / :class:`Int8Conv2d`.
- ``"2:4"``: layers whose weight is already 2:4 along K become float :class:`Sparse24Linear` /
  :class:`Sparse24Conv2d`; the others stay as they are.
- ``"2:4+int8"``: 2:4 layers become int8 2:4 modules, the other eligible layers dense int8.

``prune=True`` first magnitude-prunes every eligible weight to 2:4 (it changes the model's
outputs: meant for benchmarks and for models that will be fine-tuned afterwards, not for silently
compressing a trained model). Weights are quantized per output channel, symmetric. Activations are
quantized per tensor with a scale calibrated on ``calibration`` (one input batch run through the
float model), or, without it, with each batch's own absmax at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from harness.kernels import reference as ref
from harness.kernels.modules import Int8Conv2d, Int8Linear, Sparse24Conv2d, Sparse24Linear, conv_as_matrix

MODES = ("int8", "2:4", "2:4+int8")


@dataclass(frozen=True)
class LayerSwap:
    name: str
    layer: str  # e.g. "Conv2d 3x3 32->64"
    became: str  # the new module's class name, or "unchanged"
    reason: str


@dataclass(frozen=True)
class SwapReport:
    mode: str
    backend: str
    calibrated: bool
    layers: tuple[LayerSwap, ...]

    @property
    def swapped(self) -> tuple[LayerSwap, ...]:
        return tuple(layer for layer in self.layers if layer.became != "unchanged")

    def summary(self) -> str:
        lines = [f"{self.mode} ({self.backend}, activations {'calibrated' if self.calibrated else 'per batch'}):"]
        lines += [f"  {s.name}: {s.layer} -> {s.became} ({s.reason})" for s in self.layers]
        return "\n".join(lines)


def _describe(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return f"Conv2d {kh}x{kw} {module.in_channels}->{module.out_channels}"
    return f"Linear {module.in_features}->{module.out_features}"


def _ineligible(module: nn.Module) -> str | None:
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            return f"groups={module.groups} convolutions are not a single GEMM"
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            return "only explicit zero padding is supported"
    return None


def _matrix(module: nn.Module) -> torch.Tensor:
    return conv_as_matrix(module.weight) if isinstance(module, nn.Conv2d) else module.weight.detach()


def _prune_in_place(module: nn.Module) -> None:
    pruned = ref.prune_24(_matrix(module))
    with torch.no_grad():
        if isinstance(module, nn.Conv2d):
            o, c, kh, kw = module.weight.shape
            pruned = pruned.reshape(o, kh, kw, c).permute(0, 3, 1, 2)
        module.weight.copy_(pruned)


@torch.no_grad()
def calibrate(model: nn.Module, layers: dict[str, nn.Module], batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-tensor activation scales (absmax / 127) of each layer's input on one batch."""
    scales: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(_module, inputs):
            scales[name] = ref.activation_scale(inputs[0])
        return record

    handles = [module.register_forward_pre_hook(hook(name)) for name, module in layers.items()]
    was_training = model.training
    try:
        _train(model, False)
        model(batch)
    finally:
        _train(model, was_training)
        for handle in handles:
            handle.remove()
    return scales


def _train(model: nn.Module, mode: bool) -> None:
    try:
        model.train(mode)
    except NotImplementedError:  # a torch.export module: its train/eval behaviour was fixed at export
        pass


def _replacement(module: nn.Module, mode: str, act_scale, backend: str) -> tuple[nn.Module | None, str]:
    relu = bool(getattr(module, "fused_relu", False))
    conv = isinstance(module, nn.Conv2d)
    sparse = mode != "int8" and ref.is_24_sparse(_matrix(module))
    common = {"relu": relu, "backend": backend}
    if mode == "2:4" and not sparse:
        return None, "weight is not 2:4 sparse along K (prune it first, or pass prune=True)"
    if sparse:
        int8 = mode == "2:4+int8"
        kwargs = {**common, "int8": int8, "act_scale": act_scale if int8 else None}
        new = Sparse24Conv2d(module, **kwargs) if conv else Sparse24Linear.from_float(module, **kwargs)
        return new, "2:4 along K" + (", int8" if int8 else "")
    new = Int8Conv2d(module, act_scale=act_scale, **common) if conv else Int8Linear.from_float(
        module, act_scale=act_scale, **common)
    return new, "int8" if mode == "int8" else "not 2:4 sparse: dense int8"


def swap_modules(
    model: nn.Module,
    mode: str = "int8",
    *,
    calibration: torch.Tensor | None = None,
    backend: str = "auto",
    prune: bool = False,
) -> SwapReport:
    """Replace ``model``'s Linear / Conv2d layers in place; see the module docstring for the modes."""
    if mode not in MODES:
        raise ValueError(f"unknown swap mode {mode!r}; known: {', '.join(MODES)}")
    found = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    if "" in found:
        raise ValueError("the model itself is a Linear/Conv2d: wrap it in a container (nn.Sequential) to swap it")
    eligible = {name: m for name, m in found.items() if _ineligible(m) is None}
    if prune and mode != "int8":
        for m in eligible.values():
            _prune_in_place(m)
    scales = calibrate(model, eligible, calibration) if calibration is not None and mode != "2:4" else {}
    rows = []
    for name, module in found.items():
        why_not = _ineligible(module)
        new, reason = (None, why_not) if why_not else _replacement(module, mode, scales.get(name), backend)
        if new is not None:
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, new.to(module.weight.device))
        rows.append(LayerSwap(name, _describe(module), type(new).__name__ if new is not None else "unchanged", reason))
    return SwapReport(mode, backend, bool(scales), tuple(rows))
