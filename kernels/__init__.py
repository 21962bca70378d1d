"""The project's int8 and 2:4 sparse GEMM kernels (Triton), their plain-torch references and the
torch modules that use them. See kernels/README.md.

The Triton GEMMs are ``harness.kernels.int8_gemm.int8_gemm`` and ``harness.kernels.sparse24.sparse24_gemm``
(submodules, so not re-exported here). ``import harness.kernels`` imports nothing heavy: names resolve
on first use (torch then; triton only when a Triton kernel is actually launched).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "reference": "harness.kernels.reference",
    "Sparse24Weight": "harness.kernels.reference:Sparse24Weight",
    "compress_24": "harness.kernels.reference:compress_24",
    "decompress_24": "harness.kernels.reference:decompress_24",
    "prune_24": "harness.kernels.reference:prune_24",
    "is_24_sparse": "harness.kernels.reference:is_24_sparse",
    "quantize_weight": "harness.kernels.reference:quantize_weight",
    "triton_is_available": "harness.kernels.int8_gemm:triton_is_available",
    "Int8Linear": "harness.kernels.modules:Int8Linear",
    "Int8Conv2d": "harness.kernels.modules:Int8Conv2d",
    "Sparse24Linear": "harness.kernels.modules:Sparse24Linear",
    "Sparse24Conv2d": "harness.kernels.modules:Sparse24Conv2d",
    "swap_modules": "harness.kernels.swap:swap_modules",
    "SwapReport": "harness.kernels.swap:SwapReport",
    "lift_layers": "harness.kernels.graph:lift_layers",
    "load_swapped_program": "harness.kernels.graph:load_swapped_program",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'harness.kernels' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value
