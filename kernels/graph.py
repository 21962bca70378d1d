"""Make a saved ``torch.export`` program swappable: lift its conv / linear ops back into modules.

``torch.export.load(path).module()`` is a GraphModule whose layers are ``aten.conv2d`` /
``aten.linear`` calls on ``get_attr`` weights, so :func:`harness.kernels.swap.swap_modules` finds no
``nn.Conv2d`` to replace. :func:`lift_layers` rewrites each such call (weights that are graph
constants only) into a ``call_module`` of a fresh ``nn.Conv2d`` / ``nn.Linear``, folding an
inference ``aten.batch_norm`` that follows a conv and fusing a following ``aten.relu`` into the
module (the GEMM epilogue then applies it). Other ops (pooling, flatten, residual adds, other
batch-norm spellings) stay in the graph unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

aten = torch.ops.aten
CONV_DEFAULTS = (None, [1, 1], [0, 0], [1, 1], 1)  # bias, stride, padding, dilation, groups
RELUS = (aten.relu.default, aten.relu_.default)


class LiftedConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` rebuilt from a graph; ``fused_relu`` applies the ReLU that followed it."""

    fused_relu = False

    def forward(self, x):
        out = super().forward(x)
        return torch.relu(out) if self.fused_relu else out


class LiftedLinear(nn.Linear):
    fused_relu = False

    def forward(self, x):
        out = super().forward(x)
        return torch.relu(out) if self.fused_relu else out


def _attr(gm: torch.fx.GraphModule, node) -> torch.Tensor | None:
    """The constant tensor a ``get_attr`` node reads; LookupError for anything computed in the graph."""
    if node is None:
        return None
    if not isinstance(node, torch.fx.Node) or node.op != "get_attr":
        raise LookupError(node)
    value = gm
    for part in node.target.split("."):
        value = getattr(value, part)
    return value


def _only_user(node, targets) -> torch.fx.Node | None:
    users = list(node.users)
    if len(users) == 1 and users[0].op == "call_function" and users[0].target in targets:
        return users[0]
    return None


def _fold_batch_norm(gm, conv_node, module: nn.Conv2d) -> None:
    bn = _only_user(conv_node, (aten.batch_norm.default,))
    if bn is None or bn.args[0] is not conv_node:
        return
    args = list(bn.args) + [None] * (8 - len(bn.args))
    try:
        gamma, beta, mean, var = (_attr(gm, a) for a in args[1:5])
    except LookupError:
        return
    if args[5] or mean is None or var is None:  # training-mode batch norm: leave it
        return
    eps = args[7] if args[7] is not None else 1e-5
    with torch.no_grad():
        scale = (gamma if gamma is not None else torch.ones_like(var)) / torch.sqrt(var + eps)
        shift = (beta if beta is not None else torch.zeros_like(mean)) - mean * scale
        bias = module.bias if module.bias is not None else torch.zeros_like(mean)
        module.weight.mul_(scale.reshape(-1, 1, 1, 1))
        module.bias = nn.Parameter(bias * scale + shift)
    bn.replace_all_uses_with(conv_node)
    gm.graph.erase_node(bn)


def _fuse_relu(gm, node, module) -> None:
    relu = _only_user(node, RELUS)
    if relu is not None:
        module.fused_relu = True
        relu.replace_all_uses_with(node)
        gm.graph.erase_node(relu)


def _lift_one(gm, node) -> nn.Module | None:
    if node.kwargs:  # export passes these ops' arguments positionally; anything else is left alone
        return None
    try:
        if node.target == aten.linear.default:
            weight, bias = _attr(gm, node.args[1]), _attr(gm, node.args[2] if len(node.args) > 2 else None)
            module = LiftedLinear(weight.shape[1], weight.shape[0], bias=bias is not None)
        else:
            args = list(node.args[2:]) + list(CONV_DEFAULTS[len(node.args) - 2:])
            weight, bias = _attr(gm, node.args[1]), _attr(gm, args[0])
            stride, padding, dilation, groups = args[1:5]
            module = LiftedConv2d(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]),
                                  stride=tuple(stride), padding=tuple(padding), dilation=tuple(dilation),
                                  groups=groups, bias=bias is not None)
    except LookupError:  # a weight computed in the graph, not a constant: leave the op alone
        return None
    with torch.no_grad():
        module.weight.copy_(weight)
        if bias is not None:
            module.bias.copy_(bias)
    return module.to(weight.device)


def lift_layers(gm: torch.fx.GraphModule) -> list[str]:
    """Rewrite constant-weight conv2d / linear calls into modules in place; returns their names."""
    lifted = []
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in (aten.conv2d.default, aten.linear.default):
            continue
        module = _lift_one(gm, node)
        if module is None:
            continue
        if isinstance(module, nn.Conv2d):
            _fold_batch_norm(gm, node, module)
        _fuse_relu(gm, node, module)
        name = f"kernels_layer{len(lifted)}"
        gm.add_submodule(name, module)
        with gm.graph.inserting_before(node):
            call = gm.graph.call_module(name, (node.args[0],))
        node.replace_all_uses_with(call)
        gm.graph.erase_node(node)
        lifted.append(name)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()  # the original weights now live in the lifted modules
    gm.recompile()
    return lifted


def load_swapped_program(path: Path, mode: str = "2:4+int8", *, backend: str = "auto", device: str = "cpu",
                         dtype: torch.dtype = torch.float32, calibration: torch.Tensor | None = None):
    """Load a ``torch.export`` program, lift its layers, swap them, move it; ``(module, SwapReport)``.

    Quantization and calibration happen in float32 on the CPU, before the move: weights are never
    quantized from an fp16 copy, and the modules keep their scales in float32 after ``dtype``.
    """
    from harness.export.formats import FORMATS
    from harness.kernels.swap import swap_modules

    gm = FORMATS["torch.export"].load(path).module()
    lift_layers(gm)
    report = swap_modules(gm, mode, calibration=calibration, backend=backend)
    return gm.to(device=device, dtype=dtype), report  # an exported module's eval() raises; its graph is inference-only already
