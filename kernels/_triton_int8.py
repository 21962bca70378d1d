"""Triton source of the int8 GEMM (imported only by :mod:`harness.kernels.int8_gemm`, never at package import).

Triton decides at decoration time whether ``@triton.jit`` compiles for the GPU or runs in its CPU
interpreter (``TRITON_INTERPRET=1`` must be in the environment before this module is imported).
Triton's own ``@jit`` helpers (``tl.cdiv``, ``tl.zeros`` ...) were decorated when triton was
first imported, possibly before that variable was set (torch imports triton when it is installed),
so the kernels here use only builtins: they then run in the interpreter whatever the import order.
"""

from __future__ import annotations

import triton
import triton.language as tl


def _config(bm: int, bn: int, bk: int, stages: int, warps: int, group_m: int = 8) -> triton.Config:
    return triton.Config(
        {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": group_m}, num_stages=stages, num_warps=warps
    )


#: autotuned on the GPU. int8 tensor cores want BLOCK_K >= 32 (mma k=32 on Ampere, wgmma k=32 on
#: Hopper); the big tiles are the usual Hopper/Ampere int8 GEMM choices, the small ones cover
#: skinny problems (batch-1 Linear layers, small convolutions).
GPU_CONFIGS = [
    _config(128, 256, 128, 3, 8),
    _config(256, 128, 128, 3, 8),
    _config(128, 128, 128, 4, 4),
    _config(128, 128, 64, 4, 4),
    _config(64, 128, 128, 4, 4),
    _config(128, 64, 128, 4, 4),
    _config(64, 64, 128, 4, 4),
    _config(32, 64, 128, 4, 4),
    _config(16, 64, 256, 3, 4),
]

#: one small tile for the CPU interpreter, where autotuning would only measure the interpreter
INTERPRETER_CONFIG = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 32, "GROUP_M": 2}


@triton.jit
def tile_ids(M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """Grouped (L2-friendly) ordering of the output tiles: GROUP_M row tiles share column tiles."""
    pid = tl.program_id(0)
    num_pid_m = (M + BLOCK_M - 1) // BLOCK_M
    num_pid_n = (N + BLOCK_N - 1) // BLOCK_N
    width = GROUP_M * num_pid_n
    first_m = (pid // width) * GROUP_M
    size_m = min(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + ((pid % width) % size_m)
    pid_n = (pid % width) // size_m
    return pid_m, pid_n


@triton.jit
def epilogue(acc, rm, rn, M, N, out_ptr, stride_om, stride_on, sa_ptr, sw_ptr, bias_ptr,
             DEQUANT: tl.constexpr, SA_PER_ROW: tl.constexpr, HAS_BIAS: tl.constexpr, RELU: tl.constexpr):
    """``float32(acc) * (scale_a * scale_w[n]) + bias[n]``, optional ReLU, cast to the output dtype."""
    mask_m = rm < M
    mask_n = rn < N
    if DEQUANT:
        out = acc.to(tl.float32)
        if SA_PER_ROW:
            sa = tl.load(sa_ptr + rm, mask=mask_m, other=0.0)[:, None]
        else:
            sa = tl.load(sa_ptr)
        sw = tl.load(sw_ptr + rn, mask=mask_n, other=0.0)[None, :]
        out = out * (sa * sw)
    else:
        out = acc
    if HAS_BIAS:
        out = out + tl.load(bias_ptr + rn, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    if RELU:
        out = tl.maximum(out, 0)
    ptrs = out_ptr + rm[:, None] * stride_om + rn[None, :] * stride_on
    tl.store(ptrs, out.to(out_ptr.dtype.element_ty), mask=mask_m[:, None] & mask_n[None, :])


@triton.jit
def int8_gemm_kernel(
    a_ptr, w_ptr, out_ptr, sa_ptr, sw_ptr, bias_ptr,
    M, N, K,
    stride_am, stride_ak, stride_wn, stride_wk, stride_om, stride_on,
    DEQUANT: tl.constexpr, SA_PER_ROW: tl.constexpr, HAS_BIAS: tl.constexpr, RELU: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """``out = epilogue(a[M, K] @ w[N, K].T)`` with an exact int32 accumulator."""
    pid_m, pid_n = tile_ids(M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + rm[:, None] * stride_am + rk[None, :] * stride_ak
    w_ptrs = w_ptr + rk[:, None] * stride_wk + rn[None, :] * stride_wn  # a [BLOCK_K, BLOCK_N] view of w.T
    acc = tl.full((BLOCK_M, BLOCK_N), 0, tl.int32)
    for k in range(0, (K + BLOCK_K - 1) // BLOCK_K):
        k_left = K - k * BLOCK_K
        a = tl.load(a_ptrs, mask=(rm[:, None] < M) & (rk[None, :] < k_left), other=0)
        w = tl.load(w_ptrs, mask=(rk[:, None] < k_left) & (rn[None, :] < N), other=0)
        acc = tl.dot(a, w, acc, out_dtype=tl.int32)
        a_ptrs += BLOCK_K * stride_ak
        w_ptrs += BLOCK_K * stride_wk
    epilogue(acc, rm, rn, M, N, out_ptr, stride_om, stride_on, sa_ptr, sw_ptr, bias_ptr,
             DEQUANT, SA_PER_ROW, HAS_BIAS, RELU)


int8_gemm_autotuned = triton.autotune(configs=GPU_CONFIGS, key=["M", "N", "K"])(int8_gemm_kernel)
