"""Plain-torch references: the ground truth every Triton kernel is tested against.

Conventions shared by every kernel in this package:

- A GEMM computes ``out[m, n] = sum_k a[m, k] * w[n, k]``: ``w`` is laid out like an
  ``nn.Linear`` weight ``[N, K]`` (output channels first), so ``out = a @ w.T``.
- int8 quantization is symmetric (zero-point 0). Weights: one scale per output channel,
  codes in [-127, 127]. Activations: one scale per tensor (or per row), codes in [-127, 127];
  the kernels accept the full int8 range [-128, 127] as input.
- The int8 GEMM accumulates in int32 exactly; the epilogue is
  ``out = float32(acc) * (scale_a * scale_w[n]) + bias[n]``, then optional ReLU, computed in
  float32 and cast to the output dtype last.
- 2:4 semi-structured sparsity: in every group of 4 consecutive weights along K at most 2 are
  non-zero. The compressed layout keeps, per row of ``w``, the 2 values of each group
  (``values[N, Kp/2]``, same dtype as ``w``) and their 2-bit positions in the group
  (``meta[N, Kp/8]`` uint8: one nibble per group, ``idx0 | idx1 << 2`` with idx0 < idx1;
  even groups in the low nibble, odd groups in the high one). ``Kp`` is K rounded up to a
  multiple of 8; the padding is zeros. That is 4 bits of metadata per group of 4, the same
  density as NVIDIA's sparse tensor core format (whose exact bit order differs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

QMAX = 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# ---------------------------------------------------------------------------------------------
# quantization


def weight_scales(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric scales of a weight ``[N, ...]`` (float32, never 0)."""
    absmax = w.detach().float().reshape(w.shape[0], -1).abs().amax(dim=1)
    return torch.where(absmax > 0, absmax / QMAX, torch.ones_like(absmax))


def quantize_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes int8 [N, ...], scale float32 [N])``: per-output-channel symmetric."""
    scale = weight_scales(w)
    shape = (-1,) + (1,) * (w.dim() - 1)
    codes = torch.clamp(torch.round(w.detach().float() / scale.reshape(shape)), -QMAX, QMAX)
    return codes.to(torch.int8), scale


def activation_scale(x: torch.Tensor, *, per_row: bool = False) -> torch.Tensor:
    """Symmetric absmax scale: a 0-d tensor, or ``[M]`` for a 2-D ``x`` with ``per_row``."""
    x = x.detach().float()
    absmax = x.abs().amax(dim=1) if per_row else x.abs().amax()
    return torch.where(absmax > 0, absmax / QMAX, torch.ones_like(absmax))


def quantize_activation(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """int8 codes of ``x`` for a per-tensor (0-d) or per-row (``[M]``) scale."""
    s = scale.reshape(-1, 1) if scale.dim() == 1 else scale
    return torch.clamp(torch.round(x.float() / s), -QMAX, QMAX).to(torch.int8)


# ---------------------------------------------------------------------------------------------
# int8 GEMM


def int8_gemm_int32(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Exact int32 accumulators of ``a[M, K] (int8) @ w[N, K].T (int8)``.

    Computed in float64, which is exact here on every device (CUDA has no integer matmul): each
    product is at most 2**14 and every partial sum stays far below 2**53. The result is checked to
    fit int32 before narrowing; with int8 inputs that holds up to K = 131072.
    """
    if a.dtype != torch.int8 or w.dtype != torch.int8:
        raise TypeError(f"int8 GEMM wants int8 operands, got {a.dtype} and {w.dtype}")
    if a.shape[1] != w.shape[1]:
        raise ValueError(f"K mismatch: a is {tuple(a.shape)}, w is {tuple(w.shape)}")
    acc = (a.double() @ w.double().T).to(torch.int64)
    if acc.numel() and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise OverflowError("int32 accumulator overflow")
    return acc.to(torch.int32)


def dequant_epilogue(
    acc: torch.Tensor,
    scale_a: torch.Tensor | None,
    scale_w: torch.Tensor | None,
    bias: torch.Tensor | None = None,
    *,
    relu: bool = False,
    out_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``float32(acc) * (scale_a * scale_w) + bias``, optional ReLU, cast last (as the kernels do)."""
    out = acc.float()
    if scale_w is not None:
        sa = torch.ones((), device=acc.device) if scale_a is None else scale_a.float()
        sa = sa.reshape(-1, 1) if sa.dim() == 1 else sa
        out = out * (sa * scale_w.float().reshape(1, -1))
    if bias is not None:
        out = out + bias.float().reshape(1, -1)
    if relu:
        out = torch.relu(out)
    return out.to(out_dtype)


def int8_gemm(
    a: torch.Tensor,
    w: torch.Tensor,
    scale_a: torch.Tensor,
    scale_w: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    relu: bool = False,
    out_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """int8 GEMM with the fused epilogue: per-tensor/per-row ``scale_a``, per-channel ``scale_w``."""
    return dequant_epilogue(int8_gemm_int32(a, w), scale_a, scale_w, bias, relu=relu, out_dtype=out_dtype)


# ---------------------------------------------------------------------------------------------
# 2:4 semi-structured sparsity


@dataclass(frozen=True)
class Sparse24Weight:
    """A 2:4 weight ``[N, K]`` in the compressed layout described in this module's docstring."""

    values: torch.Tensor  # [N, Kp/2], the weight's dtype
    meta: torch.Tensor  # [N, Kp/8], uint8
    shape: tuple[int, int]  # (N, K) before padding

    @property
    def padded_k(self) -> int:
        return self.values.shape[1] * 2

    def to(self, device) -> Sparse24Weight:
        return Sparse24Weight(self.values.to(device), self.meta.to(device), self.shape)


def _padded_groups(w: torch.Tensor) -> torch.Tensor:
    """``w [N, K]`` zero-padded to ``Kp`` (a multiple of 8) and viewed as ``[N, Kp/4, 4]``."""
    if w.dim() != 2:
        raise ValueError(f"2:4 weights are 2-D [N, K], got shape {tuple(w.shape)}")
    n, k = w.shape
    kp = -(-k // 8) * 8
    if kp != k:
        w = torch.cat([w, w.new_zeros(n, kp - k)], dim=1)
    return w.reshape(n, kp // 4, 4)


def is_24_sparse(w: torch.Tensor) -> bool:
    """True when every group of 4 along the last dim of a 2-D ``w`` has at most 2 non-zeros."""
    return bool(((_padded_groups(w) != 0).sum(dim=-1) <= 2).all())


def prune_24(w: torch.Tensor) -> torch.Tensor:
    """Magnitude 2:4 pruning of a 2-D ``w`` along K: keep the 2 largest |w| of each group of 4."""
    n, k = w.shape
    groups = _padded_groups(w)
    keep = groups.abs().topk(2, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep, True)
    return (groups * mask).reshape(n, -1)[:, :k].contiguous()


def compress_24(w: torch.Tensor) -> Sparse24Weight:
    """Compress a 2:4-sparse ``w [N, K]``; raises ValueError naming a group with 3+ non-zeros."""
    n, k = w.shape
    groups = _padded_groups(w.detach())
    nonzero = groups != 0
    counts = nonzero.sum(dim=-1)
    if bool((counts > 2).any()):
        row, group = (counts > 2).nonzero()[0].tolist()
        raise ValueError(f"weight is not 2:4 sparse along K: row {row}, group {group} has {counts[row, group]} non-zeros")
    # non-zeros first (by position), then the lowest zero positions: 2 distinct indices per group
    position = torch.arange(4, device=w.device)
    key = (~nonzero).to(torch.int64) * 4 + position
    idx = key.argsort(dim=-1)[..., :2].sort(dim=-1).values  # [N, G, 2], idx0 < idx1
    values = groups.gather(-1, idx).reshape(n, -1).contiguous()
    nibble = (idx[..., 0] | (idx[..., 1] << 2)).to(torch.uint8)  # [N, G]
    meta = (nibble[:, 0::2] | (nibble[:, 1::2] << 4)).contiguous()
    return Sparse24Weight(values, meta, (n, k))


def metadata_indices(meta: torch.Tensor) -> torch.Tensor:
    """The ``[N, G, 2]`` int64 positions encoded in a ``[N, G/2]`` uint8 metadata tensor."""
    m = meta.to(torch.int64)
    nibbles = torch.stack([m & 0xF, m >> 4], dim=-1).reshape(m.shape[0], -1)  # [N, G]
    return torch.stack([nibbles & 3, nibbles >> 2], dim=-1)


def decompress_24(sw: Sparse24Weight) -> torch.Tensor:
    """The dense ``[N, K]`` weight back from its compressed layout."""
    n, k = sw.shape
    idx = metadata_indices(sw.meta)
    groups = sw.values.new_zeros(n, idx.shape[1], 4)
    groups.scatter_(-1, idx, sw.values.reshape(n, -1, 2))
    return groups.reshape(n, -1)[:, :k].contiguous()


def sparse24_gemm(
    a: torch.Tensor,
    sw: Sparse24Weight,
    scale_a: torch.Tensor | None = None,
    scale_w: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    relu: bool = False,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``a @ W.T`` for a compressed 2:4 ``W``: int8 operands (with scales) or floating point."""
    w = decompress_24(sw)
    if w.dtype == torch.int8:
        if scale_w is None:
            return int8_gemm_int32(a, w)
        return int8_gemm(a, w, scale_a, scale_w, bias, relu=relu, out_dtype=out_dtype or torch.float32)
    acc = a.float() @ w.float().T
    return dequant_epilogue(acc, None, None, bias, relu=relu, out_dtype=out_dtype or a.dtype)
