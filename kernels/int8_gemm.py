"""The Triton int8 GEMM: int8 x int8 -> int32 with a fused dequantise / bias / ReLU epilogue.

Triton is imported inside the functions, so ``import harness.kernels`` works without it. On a CUDA tensor
the kernel is compiled and autotuned (``GPU_CONFIGS``); on a CPU tensor it runs only under Triton's
interpreter (``TRITON_INTERPRET=1`` set before the first call in the process), with one small tile.
"""

from __future__ import annotations

import importlib
import importlib.util

import torch

INTERPRETER_HINT = "set TRITON_INTERPRET=1 before the first kernel call to run Triton on the CPU"


def triton_is_available() -> bool:
    """True when ``triton`` can be imported (it is not imported by this check)."""
    return importlib.util.find_spec("triton") is not None


def load_kernels(module: str):
    """Import a Triton source module (``harness.kernels._triton_int8`` ...) or raise a clear ImportError."""
    if not triton_is_available():
        raise ImportError("triton is not installed: pip install 'harness[kernels]' (triton>=3)")
    return importlib.import_module(module)


def is_interpreted(kernel) -> bool:
    """Whether this ``@triton.jit`` function was decorated under ``TRITON_INTERPRET=1``."""
    return type(kernel).__name__ == "InterpretedFunction"


def check_device(interpreted: bool, *tensors: torch.Tensor) -> None:
    on_cuda = {t.is_cuda for t in tensors}
    if len(on_cuda) > 1:
        raise ValueError("Triton GEMM operands must all be on the same device")
    if not interpreted and on_cuda != {True}:
        raise RuntimeError(f"Triton kernels need CUDA tensors; {INTERPRETER_HINT}")


def scale_args(scale_a: torch.Tensor | None, scale_w: torch.Tensor | None, m: int, n: int, device):
    """``(sa, sw, per_row)`` as contiguous float32 tensors on ``device``; validates their shapes."""
    if scale_w is None:
        dummy = torch.ones(1, dtype=torch.float32, device=device)
        return dummy, dummy, False
    sw = scale_w.to(device=device, dtype=torch.float32).contiguous()
    if sw.shape != (n,):
        raise ValueError(f"scale_w must have shape ({n},), got {tuple(sw.shape)}")
    sa = torch.ones((), device=device) if scale_a is None else scale_a
    sa = sa.to(device=device, dtype=torch.float32).contiguous()
    per_row = sa.numel() > 1  # a one-element scale is per tensor, whatever M is
    if per_row and sa.shape != (m,):
        raise ValueError(f"scale_a must be per-tensor or have shape ({m},), got {tuple(sa.shape)}")
    return sa.reshape(-1), sw, per_row


def launch(kernel_module, name: str, grid_mn: tuple[int, int], args: list, flags: dict, config: dict | None):
    """Launch ``<name>_kernel`` with ``config`` (or the interpreter's tile), else ``<name>_autotuned``."""
    import triton

    m, n = grid_mn
    kernel = getattr(kernel_module, f"{name}_kernel")
    if config is None and is_interpreted(kernel):
        config = kernel_module.INTERPRETER_CONFIG
    if config is not None:
        grid = (triton.cdiv(m, config["BLOCK_M"]) * triton.cdiv(n, config["BLOCK_N"]),)
        kernel[grid](*args, **flags, **config)  # may carry num_warps / num_stages too
        return

    def grid(meta):
        return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(n, meta["BLOCK_N"]),)

    getattr(kernel_module, f"{name}_autotuned")[grid](*args, **flags)


def int8_gemm(
    a: torch.Tensor,
    w: torch.Tensor,
    scale_a: torch.Tensor | None = None,
    scale_w: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    relu: bool = False,
    out_dtype: torch.dtype = torch.float32,
    config: dict | None = None,
) -> torch.Tensor:
    """``a[M, K] (int8) @ w[N, K].T (int8)``.

    Without ``scale_w``: the exact int32 accumulators. With it: the fused epilogue of
    :func:`harness.kernels.reference.dequant_epilogue` in ``out_dtype``. ``scale_a`` is 0-d (per tensor)
    or ``[M]`` (per row). ``config`` pins a tile (``BLOCK_M/N/K``, ``GROUP_M``) instead of autotuning.
    """
    src = load_kernels("harness.kernels._triton_int8")
    if a.dtype != torch.int8 or w.dtype != torch.int8:
        raise TypeError(f"int8 GEMM wants int8 operands, got {a.dtype} and {w.dtype}")
    if a.dim() != 2 or w.dim() != 2 or a.shape[1] != w.shape[1]:
        raise ValueError(f"shapes do not match a[M, K] @ w[N, K].T: {tuple(a.shape)} and {tuple(w.shape)}")
    check_device(is_interpreted(src.int8_gemm_kernel), a, w)
    (m, k), n = a.shape, w.shape[0]
    dequant = scale_w is not None
    if bias is not None and not dequant:
        raise ValueError("bias needs scale_w: the int32 output has no epilogue")
    out = torch.empty((m, n), dtype=out_dtype if dequant else torch.int32, device=a.device)
    if m == 0 or n == 0:
        return out
    sa, sw, per_row = scale_args(scale_a, scale_w, m, n, a.device)
    b = sw if bias is None else bias.to(device=a.device, dtype=torch.float32).contiguous()
    args = [a, w, out, sa, sw, b, m, n, k, a.stride(0), a.stride(1), w.stride(0), w.stride(1), out.stride(0), out.stride(1)]
    flags = {"DEQUANT": dequant, "SA_PER_ROW": per_row, "HAS_BIAS": bias is not None, "RELU": relu}
    launch(src, "int8_gemm", (m, n), args, flags, config)
    return out

