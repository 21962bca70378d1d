"""One entry point per GEMM, dispatching to a backend.

- ``"reference"``: the plain-torch ground truth (:mod:`harness.kernels.reference`); any device, slow.
- ``"triton"``: this package's Triton kernels (CUDA, or Triton's CPU interpreter under
  ``TRITON_INTERPRET=1``).
- ``"vendor"``: PyTorch's own kernels, the baseline: ``torch._int_mm`` (int8, CUDA) and
  semi-structured sparse tensors (``torch.sparse.to_sparse_semi_structured``: cuSPARSELt or
  CUTLASS; fp16 / bf16 2:4, CUDA).
- ``"auto"``: ``"triton"`` on a CUDA tensor when triton is installed, else ``"reference"``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from harness.kernels import reference as ref
from harness.kernels.int8_gemm import triton_is_available

Backend = Literal["auto", "reference", "triton", "vendor"]
BACKENDS = ("auto", "reference", "triton", "vendor")
VENDOR_NEEDS_CUDA = "the vendor backend (torch._int_mm / semi-structured sparse) runs on CUDA tensors only"


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend ``"auto"`` stands for on ``device``; validates the name."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}; known: {', '.join(BACKENDS)}")
    if backend == "auto":
        return "triton" if device.type == "cuda" and triton_is_available() else "reference"
    if backend == "vendor" and device.type != "cuda":
        raise RuntimeError(VENDOR_NEEDS_CUDA)
    return backend


def int8_linear(
    x_q: torch.Tensor,
    w_q: torch.Tensor,
    scale_a: torch.Tensor,
    scale_w: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    relu: bool,
    out_dtype: torch.dtype,
    backend: str = "auto",
) -> torch.Tensor:
    """Dequantised ``x_q @ w_q.T`` (int8 codes, symmetric scales) with bias and optional ReLU."""
    chosen = resolve_backend(backend, x_q.device)
    if chosen == "triton":
        from harness.kernels.int8_gemm import int8_gemm

        return int8_gemm(x_q, w_q, scale_a, scale_w, bias, relu=relu, out_dtype=out_dtype)
    if chosen == "vendor":
        acc = int_mm_padded(x_q, w_q)
        return ref.dequant_epilogue(acc, scale_a, scale_w, bias, relu=relu, out_dtype=out_dtype)
    return ref.int8_gemm(x_q, w_q, scale_a, scale_w, bias, relu=relu, out_dtype=out_dtype)


def int_mm_padded(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``torch._int_mm(a, w.T)`` with the zero padding cuBLASLt's int8 path demands (M > 16, K and N % 8)."""
    m, k = a.shape
    n = w.shape[0]
    pm, pk, pn = max(17 - m, 0), (-k) % 8, (-n) % 8
    if pm or pk:
        a = F.pad(a, (0, pk, 0, pm))
    if pk or pn:
        w = F.pad(w, (0, pk, 0, pn))
    return torch._int_mm(a, w.T)[:m, :n]


def sparse24_linear(
    x: torch.Tensor,
    weight: ref.Sparse24Weight,
    scale_a: torch.Tensor | None,
    scale_w: torch.Tensor | None,
    bias: torch.Tensor | None,
    *,
    relu: bool,
    out_dtype: torch.dtype,
    backend: str = "auto",
    vendor_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``x @ W.T`` for a compressed 2:4 ``W``: int8 codes with scales, or floating point.

    ``vendor_weight`` is the dense weight already converted by ``to_sparse_semi_structured``
    (floating point only), needed by the ``"vendor"`` backend.
    """
    chosen = resolve_backend(backend, x.device)
    if chosen == "triton":
        from harness.kernels.sparse24 import sparse24_gemm

        return sparse24_gemm(x, weight, scale_a, scale_w, bias, relu=relu, out_dtype=out_dtype)
    if chosen == "vendor":
        if vendor_weight is None:
            raise ValueError("the vendor 2:4 backend needs the semi-structured weight (floating point only)")
        out = F.linear(x, vendor_weight, None if bias is None else bias.to(x.dtype))
        return (torch.relu(out) if relu else out).to(out_dtype)
    return ref.sparse24_gemm(x, weight, scale_a, scale_w, bias, relu=relu, out_dtype=out_dtype)


def to_vendor_sparse(dense_weight: torch.Tensor) -> torch.Tensor:
    """PyTorch's semi-structured sparse tensor for a 2:4 ``[N, K]`` fp16/bf16 CUDA weight."""
    if not dense_weight.is_cuda:
        raise RuntimeError(VENDOR_NEEDS_CUDA)
    if dense_weight.dtype not in (torch.float16, torch.bfloat16):
        raise TypeError(
            "vendor 2:4 modules take fp16/bf16 weights: PyTorch's int8 semi-structured matmul "
            "returns saturated int8, not int32 accumulators"
        )
    return torch.sparse.to_sparse_semi_structured(dense_weight)
