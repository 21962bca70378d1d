"""torch modules backed by this package's GEMMs: int8 and 2:4 Linear, and Conv2d through im2col.

Every module keeps its scales and bias in float32 whatever ``.half()`` does to the model (a weight
scale of 1e-5 is subnormal in fp16), quantizes activations symmetrically per tensor (a calibrated
``act_scale``, or the batch's own absmax when none was given) and computes on the backend of
:mod:`harness.kernels.ops` (``"auto"``: Triton on CUDA, the plain-torch reference elsewhere).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from harness.kernels import ops
from harness.kernels import reference as ref


def _optional_buffer(module: nn.Module, name: str, value: torch.Tensor | None) -> None:
    module.register_buffer(name, None if value is None else value.detach().float().clone())


class _GemmModule(nn.Module):
    """Shared state: bias, activation scale, fused ReLU, backend; float32 scale buffers."""

    _float32_buffers = ("w_scale", "act_scale", "bias")

    def __init__(self, bias, act_scale, relu: bool, backend: str) -> None:
        super().__init__()
        if backend not in ops.BACKENDS:
            raise ValueError(f"unknown kernel backend {backend!r}; known: {', '.join(ops.BACKENDS)}")
        _optional_buffer(self, "bias", bias)
        _optional_buffer(self, "act_scale", None if act_scale is None else torch.as_tensor(act_scale).reshape(()))
        self.relu = relu
        self.backend = backend

    def _apply(self, fn, recurse=True):
        keep = {n: self._buffers[n] for n in self._float32_buffers if self._buffers.get(n) is not None}
        super()._apply(fn, recurse)
        for name, original in keep.items():
            self._buffers[name] = original.to(self._buffers[name].device)
        return self

    def _quantize_input(self, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale = self.act_scale if self.act_scale is not None else ref.activation_scale(x2)
        return ref.quantize_activation(x2, scale), scale

    def extra_repr(self) -> str:
        static = "calibrated" if self.act_scale is not None else "per-batch"
        return f"relu={self.relu}, backend={self.backend!r}, act_scale={static}"


class Int8Linear(_GemmModule):
    """``y = dequant(q(x) @ w_q.T) + bias``: int8 weights per output channel, int8 activations per tensor."""

    def __init__(self, weight: torch.Tensor, bias=None, *, act_scale=None, relu=False, backend="auto") -> None:
        super().__init__(bias, act_scale, relu, backend)
        w_q, w_scale = ref.quantize_weight(weight)
        self.register_buffer("w_q", w_q)
        self.register_buffer("w_scale", w_scale)
        self.out_features, self.in_features = w_q.shape

    @classmethod
    def from_float(cls, linear: nn.Linear, **kwargs) -> Int8Linear:
        return cls(linear.weight, linear.bias, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features)
        x_q, scale = self._quantize_input(x2)
        out = ops.int8_linear(x_q, self.w_q, scale, self.w_scale, self.bias, relu=self.relu,
                              out_dtype=x.dtype, backend=self.backend)
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, {super().extra_repr()}"


class Sparse24Linear(_GemmModule):
    """A Linear whose ``[N, K]`` weight is 2:4 sparse along K, stored compressed (values + metadata).

    ``int8=True`` quantizes the kept values per output channel and the activations per tensor;
    otherwise the values keep the weight's floating dtype (and follow ``.half()``).
    """

    def __init__(self, weight: torch.Tensor, bias=None, *, int8=False, act_scale=None, relu=False,
                 backend="auto") -> None:
        super().__init__(bias, act_scale if int8 else None, relu, backend)
        weight = weight.detach()
        if int8:
            weight, w_scale = ref.quantize_weight(weight)  # zeros stay zeros: still 2:4
            self.register_buffer("w_scale", w_scale)
        else:
            self.register_buffer("w_scale", None)
        packed = ref.compress_24(weight)
        self.register_buffer("values", packed.values)
        self.register_buffer("meta", packed.meta)
        self.out_features, self.in_features = packed.shape
        self.int8 = int8
        self._vendor: torch.Tensor | None = None  # semi-structured weight, built on first vendor call

    @classmethod
    def from_float(cls, linear: nn.Linear, **kwargs) -> Sparse24Linear:
        return cls(linear.weight, linear.bias, **kwargs)

    @property
    def packed(self) -> ref.Sparse24Weight:
        return ref.Sparse24Weight(self.values, self.meta, (self.out_features, self.in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features)
        scale = None
        if self.int8:
            x2, scale = self._quantize_input(x2)
        else:
            x2 = x2.to(self.values.dtype)
        vendor = None
        if self.backend == "vendor":
            if self._vendor is None or self._vendor.device != x.device:
                self._vendor = ops.to_vendor_sparse(ref.decompress_24(self.packed))
            vendor = self._vendor
        out = ops.sparse24_linear(x2, self.packed, scale, self.w_scale, self.bias, relu=self.relu,
                                  out_dtype=x.dtype, backend=self.backend, vendor_weight=vendor)
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        kind = "int8" if self.int8 else str(self.values.dtype).replace("torch.", "")
        return f"in_features={self.in_features}, out_features={self.out_features}, {kind}, {super().extra_repr()}"


def conv_as_matrix(weight: torch.Tensor) -> torch.Tensor:
    """``[O, C, kh, kw]`` -> ``[O, kh * kw * C]``: K runs over C fastest, so 2:4 groups lie along C."""
    return weight.detach().permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


def im2col(x: torch.Tensor, kernel_size, stride, padding, dilation) -> tuple[torch.Tensor, int, int]:
    """``x [B, C, H, W]`` -> ``(cols [B * Ho * Wo, kh * kw * C], Ho, Wo)`` in :func:`conv_as_matrix`'s order."""
    b, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        return x.permute(0, 2, 3, 1).reshape(-1, c), ho, wo  # 1x1: no copy beyond the layout change
    cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))  # [B, C*kh*kw, L]
    cols = cols.reshape(b, c, kh * kw, ho * wo).permute(0, 3, 2, 1)
    return cols.reshape(b * ho * wo, kh * kw * c), ho, wo


class _Conv2dGemm(nn.Module):
    """A groups=1, zero-padded Conv2d computed as im2col followed by one of the GEMM modules."""

    def __init__(self, conv: nn.Conv2d, gemm: nn.Module) -> None:
        super().__init__()
        if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("only groups=1 convolutions with explicit zero padding become a GEMM")
        self.kernel_size, self.stride = tuple(conv.kernel_size), tuple(conv.stride)
        self.padding, self.dilation = tuple(conv.padding), tuple(conv.dilation)
        self.out_channels = conv.out_channels
        self.gemm = gemm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols, ho, wo = im2col(x, self.kernel_size, self.stride, self.padding, self.dilation)
        out = self.gemm(cols)
        return out.reshape(x.shape[0], ho, wo, self.out_channels).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Int8Conv2d(_Conv2dGemm):
    """Conv2d (1x1, 3x3, any stride / padding / dilation, groups=1) on the int8 GEMM."""

    def __init__(self, conv: nn.Conv2d, *, act_scale=None, relu=False, backend="auto") -> None:
        gemm = Int8Linear(conv_as_matrix(conv.weight), conv.bias, act_scale=act_scale, relu=relu, backend=backend)
        super().__init__(conv, gemm)


class Sparse24Conv2d(_Conv2dGemm):
    """Conv2d on the 2:4 GEMM: the weight must be 2:4 along (kh, kw, C)-flattened K (along C when C % 4 == 0)."""

    def __init__(self, conv: nn.Conv2d, *, int8=False, act_scale=None, relu=False, backend="auto") -> None:
        gemm = Sparse24Linear(conv_as_matrix(conv.weight), conv.bias, int8=int8, act_scale=act_scale,
                              relu=relu, backend=backend)
        super().__init__(conv, gemm)
