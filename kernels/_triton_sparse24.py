"""Triton source of the 2:4 sparse GEMM (imported only by :mod:`harness.kernels.sparse24`).

The kernel reads the compressed weight (``values [N, Kp/2]`` + ``meta [N, Kp/8]``, see
:mod:`harness.kernels.reference`) and expands each ``[BLOCK_K, BLOCK_N]`` tile to dense in registers, so
global memory traffic for the weight is 5/8 of the dense int8 weight (9/16 for fp16). The MMA
itself is dense: Triton exposes no sparse tensor core instruction (``mma.sp``), so this kernel can
only win where the weight's memory traffic dominates (small M). PyTorch's semi-structured tensors
(cuSPARSELt / CUTLASS) are the baseline that does use the sparse tensor cores.
"""

from __future__ import annotations

import triton
import triton.language as tl

from harness.kernels._triton_int8 import GPU_CONFIGS, INTERPRETER_CONFIG, epilogue, tile_ids

__all__ = ["GPU_CONFIGS", "INTERPRETER_CONFIG", "sparse24_gemm_kernel", "sparse24_gemm_autotuned"]


@triton.jit
def expand_tile(v_ptr, m_ptr, rn, g, N, G_TOTAL, stride_vn, stride_vk, stride_mn, stride_mk,
                BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr):
    """Dense ``[BLOCK_K, BLOCK_N]`` tile of ``w.T`` for groups ``g`` and output channels ``rn``."""
    mask = (g[:, None] < G_TOTAL) & (rn[None, :] < N)
    v_base = v_ptr + rn[None, :] * stride_vn + (2 * g)[:, None] * stride_vk
    v0 = tl.load(v_base, mask=mask, other=0)
    v1 = tl.load(v_base + stride_vk, mask=mask, other=0)
    meta = tl.load(m_ptr + rn[None, :] * stride_mn + (g // 2)[:, None] * stride_mk, mask=mask, other=0)
    nibble = (meta.to(tl.int32) >> ((g % 2) * 4)[:, None]) & 0xF
    i0 = nibble & 3  # position of v0 in its group of 4
    i1 = nibble >> 2  # position of v1 (i1 > i0)
    zero = tl.full((BLOCK_K // 4, BLOCK_N), 0, v0.dtype)  # builtins only: see _triton_int8
    d0 = tl.where(i0 == 0, v0, zero)
    d1 = tl.where(i0 == 1, v0, tl.where(i1 == 1, v1, zero))
    d2 = tl.where(i0 == 2, v0, tl.where(i1 == 2, v1, zero))
    d3 = tl.where(i1 == 3, v1, zero)
    # [G, BN, 2, 2] with [g, n, i, j] = d_{2i+j}  ->  [G, 2, 2, BN]  ->  [4G, BN], row 4g + p = d_p
    quad = tl.join(tl.join(d0, d2), tl.join(d1, d3))
    return tl.reshape(tl.permute(quad, (0, 2, 3, 1)), (BLOCK_K, BLOCK_N))


@triton.jit
def sparse24_gemm_kernel(
    a_ptr, v_ptr, m_ptr, out_ptr, sa_ptr, sw_ptr, bias_ptr,
    M, N, K, G_TOTAL,
    stride_am, stride_ak, stride_vn, stride_vk, stride_mn, stride_mk, stride_om, stride_on,
    INT8: tl.constexpr, DEQUANT: tl.constexpr, SA_PER_ROW: tl.constexpr, HAS_BIAS: tl.constexpr,
    RELU: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """``out = epilogue(a[M, K] @ W.T)`` for a compressed 2:4 ``W``; int32 or float32 accumulator."""
    pid_m, pid_n = tile_ids(M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    rg = tl.arange(0, BLOCK_K // 4)
    a_ptrs = a_ptr + rm[:, None] * stride_am + rk[None, :] * stride_ak
    if INT8:
        acc = tl.full((BLOCK_M, BLOCK_N), 0, tl.int32)
    else:
        acc = tl.full((BLOCK_M, BLOCK_N), 0, tl.float32)
    for k in range(0, (K + BLOCK_K - 1) // BLOCK_K):
        k_left = K - k * BLOCK_K
        a = tl.load(a_ptrs, mask=(rm[:, None] < M) & (rk[None, :] < k_left), other=0)
        w = expand_tile(v_ptr, m_ptr, rn, k * (BLOCK_K // 4) + rg, N, G_TOTAL,
                        stride_vn, stride_vk, stride_mn, stride_mk, BLOCK_K, BLOCK_N)
        if INT8:
            acc = tl.dot(a, w, acc, out_dtype=tl.int32)
        else:
            acc = tl.dot(a, w, acc)
        a_ptrs += BLOCK_K * stride_ak
    epilogue(acc, rm, rn, M, N, out_ptr, stride_om, stride_on, sa_ptr, sw_ptr, bias_ptr,
             DEQUANT, SA_PER_ROW, HAS_BIAS, RELU)


sparse24_gemm_autotuned = triton.autotune(configs=GPU_CONFIGS, key=["M", "N", "K"])(sparse24_gemm_kernel)
