"""The Triton kernels against harness.kernels.reference, on the CPU through Triton's interpreter.

Triton picks compiler or interpreter when ``@triton.jit`` runs, reading ``TRITON_INTERPRET`` from
the environment then (triton 3.x: ``triton.knobs.runtime.interpret``); the fixture sets it and
imports the kernel sources fresh, and drops them again afterwards so that nothing later in the
session gets interpreted kernels by surprise.

Tolerances: int32 accumulators are compared exactly. Dequantised float32 outputs may differ from
the reference only by rounding order inside the float32 epilogue: rtol 1e-6 and atol 1e-6 of the
output's largest magnitude. fp16 outputs are the same float32 value rounded once: rtol 2**-10.
"""

from __future__ import annotations

import importlib
import sys

import pytest
import torch

from harness.kernels import reference as ref
from harness.kernels.int8_gemm import triton_is_available

pytestmark = pytest.mark.skipif(not triton_is_available(), reason="triton is not installed (pip install 'harness[kernels]')")
SOURCES = ("harness.kernels._triton_int8", "harness.kernels._triton_sparse24")
SHAPES = [(17, 33, 65), (1, 7, 9), (32, 16, 64)]  # odd tails in M, N and K; one single row; exact tiles


def _forget_sources() -> None:
    for name in SOURCES:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module", autouse=True)
def interpreter():
    import triton.language  # noqa: F401 - imported first on purpose: torch may have done so already, and the
    # kernels must still run interpreted (they use no @jit helper of triton's own, decorated at this import)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRITON_INTERPRET", "1")
        _forget_sources()
        from harness.kernels.int8_gemm import is_interpreted

        for name in SOURCES:
            module = importlib.import_module(name)
            kernel = getattr(module, name.removeprefix("harness.kernels._triton_") + "_gemm_kernel")
            assert is_interpreted(kernel), "Triton ignored TRITON_INTERPRET=1"
        yield
    _forget_sources()


def _int8(*shape, seed=0, values=None):
    g = torch.Generator().manual_seed(seed)
    if values is not None:
        pick = torch.randint(0, len(values), shape, generator=g)
        return torch.tensor(values, dtype=torch.int8)[pick]
    return torch.randint(-128, 128, shape, dtype=torch.int8, generator=g)


def _int8_24(n, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ref.prune_24(torch.randint(-128, 128, (n, k), generator=g).float()).to(torch.int8)


def _close(out, expected):
    scale = max(expected.abs().max().item(), 1.0)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6 * scale)


@pytest.mark.parametrize("m,n,k", SHAPES)
def test_int8_gemm_int32_accumulators_equal_the_reference_exactly(m, n, k):
    from harness.kernels.int8_gemm import int8_gemm

    a, w = _int8(m, k, seed=1), _int8(n, k, seed=2)
    out = int8_gemm(a, w)
    assert out.dtype == torch.int32 and torch.equal(out, ref.int8_gemm_int32(a, w))


def test_int8_gemm_extreme_values_accumulate_exactly_beyond_float32_precision():
    from harness.kernels.int8_gemm import int8_gemm

    k = 1041  # 1041 * 127 * 127 is odd and above 2**24
    a = torch.cat([torch.full((1, k), 127, dtype=torch.int8), _int8(2, k, seed=3, values=[-128, 127])])
    w = torch.cat([torch.full((1, k), 127, dtype=torch.int8), torch.full((1, k), -128, dtype=torch.int8)])
    out = int8_gemm(a, w)
    assert out[0, 0].item() == k * 127 * 127 and out[0, 1].item() == -k * 127 * 128
    assert torch.equal(out, ref.int8_gemm_int32(a, w))


def test_int8_gemm_all_zero_operands_give_zero_accumulators_and_a_bias_only_epilogue():
    from harness.kernels.int8_gemm import int8_gemm

    a, w = torch.zeros(5, 24, dtype=torch.int8), torch.zeros(9, 24, dtype=torch.int8)
    assert torch.equal(int8_gemm(a, w), torch.zeros(5, 9, dtype=torch.int32))
    bias = torch.linspace(-1, 1, 9)
    out = int8_gemm(a, w, torch.tensor(0.1), torch.ones(9), bias, relu=True)
    assert torch.equal(out, torch.relu(bias).expand(5, 9))


@pytest.mark.parametrize("per_row,relu,out_dtype", [(False, False, torch.float32), (True, True, torch.float32),
                                                     (False, True, torch.float16)])
def test_int8_gemm_fused_epilogue_matches_the_reference_within_tolerance(per_row, relu, out_dtype):
    from harness.kernels.int8_gemm import int8_gemm

    m, n, k = 17, 33, 65
    a, w = _int8(m, k, seed=4), _int8(n, k, seed=5)
    sa = torch.rand(m) * 0.05 + 1e-3 if per_row else torch.tensor(0.013)
    sw, bias = torch.rand(n) * 0.01 + 1e-4, torch.randn(n)
    out = int8_gemm(a, w, sa, sw, bias, relu=relu, out_dtype=out_dtype)
    expected = ref.int8_gemm(a, w, sa, sw, bias, relu=relu, out_dtype=out_dtype)
    assert out.dtype == out_dtype
    if out_dtype == torch.float16:
        torch.testing.assert_close(out, expected, rtol=2**-10, atol=0)
    else:
        _close(out, expected)


@pytest.mark.parametrize("m,n,k", SHAPES)
def test_sparse24_int8_gemm_reads_the_compressed_layout_and_accumulates_exactly(m, n, k):
    from harness.kernels.sparse24 import sparse24_gemm

    w, a = _int8_24(n, k, seed=6), _int8(m, k, seed=7)
    out = sparse24_gemm(a, ref.compress_24(w))
    assert out.dtype == torch.int32 and torch.equal(out, ref.int8_gemm_int32(a, w))


def test_sparse24_int8_gemm_with_extreme_values_and_per_row_epilogue_matches_the_reference():
    from harness.kernels.sparse24 import sparse24_gemm

    m, n, k = 9, 20, 72
    w = ref.prune_24(_int8(n, k, seed=8, values=[-128, 127, 1]).float()).to(torch.int8)
    a = _int8(m, k, seed=9, values=[-128, 127])
    packed = ref.compress_24(w)
    sa, sw, bias = torch.rand(m) + 0.01, torch.rand(n) * 0.01 + 1e-4, torch.randn(n)
    out = sparse24_gemm(a, packed, sa, sw, bias, relu=True)
    _close(out, ref.sparse24_gemm(a, packed, sa, sw, bias, relu=True))


def test_sparse24_gemm_all_zero_weight_gives_zero_output():
    from harness.kernels.sparse24 import sparse24_gemm

    packed = ref.compress_24(torch.zeros(6, 16, dtype=torch.int8))
    assert torch.equal(sparse24_gemm(_int8(3, 16, seed=10), packed), torch.zeros(3, 6, dtype=torch.int32))


@pytest.mark.parametrize("m,n,k", [(17, 33, 65), (3, 16, 32)])
def test_sparse24_float_gemm_matches_dense_float_matmul_within_tolerance(m, n, k):
    from harness.kernels.sparse24 import sparse24_gemm

    g = torch.Generator().manual_seed(11)
    w = ref.prune_24(torch.randn(n, k, generator=g))
    a, bias = torch.randn(m, k, generator=g), torch.randn(n, generator=g)
    out = sparse24_gemm(a, ref.compress_24(w), bias=bias, relu=True)
    torch.testing.assert_close(out, torch.relu(a @ w.T + bias), rtol=1e-5, atol=1e-5)


def test_modules_on_the_triton_backend_match_the_reference_backend():
    import torch.nn as nn

    from harness.kernels.modules import Int8Linear, Sparse24Conv2d

    torch.manual_seed(12)
    linear = nn.Linear(40, 24)
    x = torch.randn(5, 40)
    fast, slow = (Int8Linear.from_float(linear, act_scale=0.03, relu=True, backend=b) for b in ("triton", "reference"))
    _close(fast(x), slow(x))

    conv = nn.Conv2d(8, 16, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(ref.prune_24(conv.weight.permute(0, 2, 3, 1).reshape(16, -1)).reshape(16, 3, 3, 8)
                          .permute(0, 3, 1, 2))
    xc = torch.randn(2, 8, 5, 5)
    fast, slow = (Sparse24Conv2d(conv, int8=True, backend=b) for b in ("triton", "reference"))
    _close(fast(xc), slow(xc))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")
def test_compiled_kernels_on_the_gpu_match_the_reference():
    """Run on a GPU machine (CI skips it): the autotuned, compiled kernels, not the interpreter."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("TRITON_INTERPRET", raising=False)
        _forget_sources()
        from harness.kernels.int8_gemm import int8_gemm
        from harness.kernels.sparse24 import sparse24_gemm

        a, w = _int8(300, 520, seed=13).cuda(), _int8(260, 520, seed=14).cuda()
        assert torch.equal(int8_gemm(a, w).cpu(), ref.int8_gemm_int32(a.cpu(), w.cpu()))
        w24 = _int8_24(260, 520, seed=15)
        assert torch.equal(sparse24_gemm(a, ref.compress_24(w24).to("cuda")).cpu(), ref.int8_gemm_int32(a.cpu(), w24))
    _forget_sources()


def test_benchmark_checks_every_contender_before_timing_it(monkeypatch):
    """benchmarks/kernels_gemm.py's row logic on the CPU (fake clock): our kernels pass its checks,
    contenders that need CUDA record why they could not run, and speedups come from the timings."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "kernels_gemm.py"
    spec = importlib.util.spec_from_file_location("kernels_gemm", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "bench", lambda fn: 1.0)
    row = bench.summarise(bench.gemm_row("tiny", 17, 16, 32, device="cpu"), 100.0, 200.0)
    ms = row["ms"]
    for key in ("ours_int8", "ours_int8_fused_fp16", "ours_24_fp16", "ours_24_int8"):
        assert ms[key] == 1.0, f"{key}: {ms[key]}"
    assert str(ms["torch_semi_fp16"]).startswith("unavailable:")
    assert row["speedup"]["24_int8_vs_dense_int8"] == 1.0 and row["speedup"]["24_fp16_vs_torch_semi_fp16"] is None
    assert row["pct_of_dense_peak"]["ours_int8"] == pytest.approx(100 * row["tflops"]["ours_int8"] / 200.0, rel=0.01)
