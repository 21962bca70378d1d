"""The Triton 2:4 sparse GEMM over the compressed layout of :mod:`harness.kernels.reference`.

int8 weights: int8 activations, exact int32 accumulators and the int8 GEMM's fused epilogue.
Floating-point weights (fp16 / bf16 on the GPU, any float in the interpreter): float32
accumulation, optional bias and ReLU. See ``kernels/_triton_sparse24.py`` for what the kernel can
and cannot gain over a dense one (it expands tiles in registers; the MMA stays dense).
"""

from __future__ import annotations

import torch

from harness.kernels.int8_gemm import check_device, is_interpreted, launch, load_kernels, scale_args
from harness.kernels.reference import Sparse24Weight


def sparse24_gemm(
    a: torch.Tensor,
    sw: Sparse24Weight,
    scale_a: torch.Tensor | None = None,
    scale_w: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    relu: bool = False,
    out_dtype: torch.dtype | None = None,
    config: dict | None = None,
) -> torch.Tensor:
    """``a[M, K] @ W.T`` for the compressed 2:4 weight ``sw`` (``W`` is ``[N, K]``).

    int8 ``sw`` without ``scale_w`` returns the exact int32 accumulators; with ``scale_w`` the
    dequantised output in ``out_dtype`` (float32 by default). A floating-point ``sw`` returns
    ``out_dtype`` (default: ``a.dtype``).
    """
    src = load_kernels("harness.kernels._triton_sparse24")
    n, k = sw.shape
    int8 = sw.values.dtype == torch.int8
    if int8 != (a.dtype == torch.int8):
        raise TypeError(f"operand dtypes do not match: a is {a.dtype}, the weight is {sw.values.dtype}")
    if not int8 and scale_w is not None:
        raise ValueError("scales apply to int8 weights only")
    if a.dim() != 2 or a.shape[1] != k:
        raise ValueError(f"a must be [M, {k}], got {tuple(a.shape)}")
    check_device(is_interpreted(src.sparse24_gemm_kernel), a, sw.values, sw.meta)
    m = a.shape[0]
    dequant = int8 and scale_w is not None
    if int8 and not dequant and bias is not None:
        raise ValueError("bias needs scale_w: the int32 output has no epilogue")
    if int8:
        dtype = (out_dtype or torch.float32) if dequant else torch.int32
    else:
        dtype = out_dtype or a.dtype
    out = torch.empty((m, n), dtype=dtype, device=a.device)
    if m == 0 or n == 0:
        return out
    sa, sw_scale, per_row = scale_args(scale_a, scale_w, m, n, a.device)
    b = sw_scale if bias is None else bias.to(device=a.device, dtype=torch.float32).contiguous()
    v, meta = sw.values, sw.meta
    args = [
        a, v, meta, out, sa, sw_scale, b, m, n, k, sw.padded_k // 4,
        a.stride(0), a.stride(1), v.stride(0), v.stride(1), meta.stride(0), meta.stride(1),
        out.stride(0), out.stride(1),
    ]
    flags = {"INT8": int8, "DEQUANT": dequant, "SA_PER_ROW": per_row, "HAS_BIAS": bias is not None, "RELU": relu}
    launch(src, "sparse24_gemm", (m, n), args, flags, config)
    return out
