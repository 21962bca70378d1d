"""harness.kernels.reference against plain float math: the ground truth the Triton kernels are held to."""

from __future__ import annotations

import pytest
import torch

from harness.kernels import reference as ref


def _int8(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-128, 128, shape, dtype=torch.int8, generator=g)


def _sparse24(n, k, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ref.prune_24(torch.randn(n, k, generator=g)).to(dtype)


@pytest.mark.parametrize("m,n,k", [(17, 33, 65), (1, 1, 1), (4, 8, 256)])
def test_int8_gemm_int32_equals_an_integer_sum_of_products(m, n, k):
    a, w = _int8(m, k, seed=1), _int8(n, k, seed=2)
    acc = ref.int8_gemm_int32(a, w)
    assert acc.dtype == torch.int32
    assert torch.equal(acc.long(), (a.long()[:, None, :] * w.long()[None, :, :]).sum(-1))


def test_int8_gemm_int32_is_exact_where_float32_accumulation_is_not():
    k = 1041  # 1041 * 127 * 127 = 16_790_289: odd and above 2**24, not representable in float32
    acc = ref.int8_gemm_int32(torch.full((1, k), 127, dtype=torch.int8), torch.full((1, k), 127, dtype=torch.int8))
    assert acc.item() == k * 127 * 127
    assert torch.tensor(k * 127 * 127, dtype=torch.float32).item() != k * 127 * 127


def test_int8_gemm_rejects_wrong_dtypes_and_mismatched_k():
    with pytest.raises(TypeError):
        ref.int8_gemm_int32(torch.zeros(2, 3), _int8(2, 3))
    with pytest.raises(ValueError, match="K mismatch"):
        ref.int8_gemm_int32(_int8(2, 3), _int8(2, 4))


@pytest.mark.parametrize("per_row", [False, True])
def test_int8_gemm_epilogue_equals_dequantised_float_math(per_row):
    m, n, k = 9, 13, 40
    a, w = _int8(m, k, seed=3), _int8(n, k, seed=4)
    sa = torch.rand(m) + 0.01 if per_row else torch.tensor(0.02)
    sw, bias = torch.rand(n) + 0.01, torch.randn(n)
    out = ref.int8_gemm(a, w, sa, sw, bias, relu=True)
    a_f = a.double() * (sa.double().reshape(-1, 1) if per_row else sa.double())
    expected = torch.relu(a_f @ (w.double() * sw.double().reshape(-1, 1)).T + bias.double())
    torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-6 * expected.abs().max().item())


def test_weight_quantization_is_per_channel_symmetric_within_half_a_step():
    w = torch.randn(6, 4, 3, 3)
    w[2] = 0.0  # an all-zero channel keeps a usable scale
    codes, scale = ref.quantize_weight(w)
    assert codes.dtype == torch.int8 and scale.shape == (6,)
    assert codes.abs().max() <= 127 and torch.all(codes[2] == 0) and scale[2] == 1.0
    err = (codes.float() * scale.reshape(-1, 1, 1, 1) - w).abs()
    assert torch.all(err <= scale.reshape(-1, 1, 1, 1) / 2 + 1e-7)


def test_activation_quantization_per_tensor_and_per_row():
    x = torch.tensor([[1.0, -2.0], [0.5, 0.25]])
    assert ref.activation_scale(x).item() == pytest.approx(2 / 127)
    rows = ref.activation_scale(x, per_row=True)
    assert rows.tolist() == pytest.approx([2 / 127, 0.5 / 127])
    assert ref.quantize_activation(x, rows).tolist() == [[64, -127], [127, 64]]


def test_compressed_layout_matches_the_documented_bit_order():
    w = torch.tensor([[0.0, 5.0, 0.0, 7.0, 3.0, 0.0, 0.0, 0.0]])
    packed = ref.compress_24(w)
    assert packed.values.tolist() == [[5.0, 7.0, 3.0, 0.0]]
    # group 0 keeps positions (1, 3) -> 1 | 3 << 2 = 13; group 1 keeps (0, 1) -> 4; byte = 13 | 4 << 4
    assert packed.meta.dtype == torch.uint8 and packed.meta.tolist() == [[13 | 4 << 4]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int8])
@pytest.mark.parametrize("k", [8, 12, 65])
def test_compress_decompress_round_trip_including_padding_and_sparse_groups(dtype, k):
    w = _sparse24(7, k, seed=k)
    w[0] = 0.0  # groups with fewer than 2 non-zeros
    w[1, :4] = torch.tensor([0.0, 0.0, 0.0, 3.0])
    w = (w * 40).round().clamp(-128, 127).to(dtype) if dtype == torch.int8 else w.to(dtype)
    packed = ref.compress_24(w)
    kp = -(-k // 8) * 8
    assert packed.values.shape == (7, kp // 2) and packed.meta.shape == (7, kp // 8)
    assert packed.values.dtype == dtype
    assert torch.equal(ref.decompress_24(packed), w)


def test_compress_refuses_a_group_with_three_nonzeros_and_names_it():
    w = torch.ones(2, 8)
    w[:, [0, 1, 4, 5]] = 0.0
    w[1, 4:8] = torch.tensor([1.0, 1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="row 1, group 1 has 3 non-zeros"):
        ref.compress_24(w)


def test_prune_24_keeps_the_two_largest_magnitudes_per_group():
    w = torch.tensor([[0.1, -0.9, 0.5, 0.2, 1.0, 2.0, -3.0, 4.0, 0.7]])
    pruned = ref.prune_24(w)
    assert pruned[0].tolist() == pytest.approx([0.0, -0.9, 0.5, 0.0, 0.0, 0.0, -3.0, 4.0, 0.7])
    assert ref.is_24_sparse(pruned) and not ref.is_24_sparse(w)


def test_sparse24_gemm_float_equals_dense_matmul_with_bias_and_relu():
    w, a, bias = _sparse24(11, 36, seed=5), torch.randn(6, 36), torch.randn(11)
    out = ref.sparse24_gemm(a, ref.compress_24(w), bias=bias, relu=True)
    torch.testing.assert_close(out, torch.relu(a @ w.T + bias), rtol=1e-5, atol=1e-5)


def test_sparse24_gemm_int8_is_exact_and_dequantises_like_the_dense_int8_gemm():
    w = (_sparse24(5, 24, seed=6) * 50).round().clamp(-127, 127).to(torch.int8)
    a = _int8(3, 24, seed=7)
    packed = ref.compress_24(w)
    assert torch.equal(ref.sparse24_gemm(a, packed), ref.int8_gemm_int32(a, w))
    sa, sw = torch.tensor(0.5), torch.rand(5) + 0.1
    assert torch.equal(ref.sparse24_gemm(a, packed, sa, sw), ref.int8_gemm(a, w, sa, sw))
