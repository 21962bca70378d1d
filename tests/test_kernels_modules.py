"""The kernels' torch modules, swap_modules, graph lifting and the torch-kernels runtime, on the CPU.

Everything here runs the plain-torch reference path (the "auto" backend on a CPU tensor). Two
tolerances: against the same arithmetic done in float ("fake quantization": the int8 codes times
their scales), outputs agree to 1e-5 relative; against the unquantized float layer, int8 outputs
stay within 2 % of the output's largest magnitude, and a trained model keeps >= 95 % of its top-1
decisions on the evaluation split.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

from harness.kernels import reference as ref
from harness.kernels.graph import lift_layers, load_swapped_program
from harness.kernels.modules import Int8Conv2d, Int8Linear, Sparse24Conv2d, Sparse24Linear, conv_as_matrix, im2col
from harness.kernels.swap import swap_modules


def _relative_error(out, expected) -> float:
    return ((out - expected).abs().max() / expected.abs().max()).item()


def _prune_conv_24(conv: nn.Conv2d) -> None:
    o, c, kh, kw = conv.weight.shape
    with torch.no_grad():
        conv.weight.copy_(ref.prune_24(conv_as_matrix(conv.weight)).reshape(o, kh, kw, c).permute(0, 3, 1, 2))


def test_int8_linear_equals_fake_quantized_float_math_and_stays_near_the_float_layer():
    torch.manual_seed(0)
    linear, x = nn.Linear(64, 24), torch.randn(2, 5, 64)  # 3-D input: leading dims are kept
    module = Int8Linear.from_float(linear, act_scale=ref.activation_scale(x))
    out = module(x)
    assert out.shape == (2, 5, 24)
    x_fake = ref.quantize_activation(x.reshape(-1, 64), module.act_scale).float() * module.act_scale
    w_fake = module.w_q.float() * module.w_scale.reshape(-1, 1)
    expected = (x_fake @ w_fake.T + linear.bias).reshape(2, 5, 24)
    torch.testing.assert_close(out, expected.detach(), rtol=1e-5, atol=1e-5)
    assert _relative_error(out, linear(x).detach()) < 0.02


def test_int8_linear_without_calibration_quantizes_each_batch_with_its_own_scale():
    torch.manual_seed(1)
    linear = nn.Linear(16, 8)
    module = Int8Linear.from_float(linear)
    small, large = torch.randn(4, 16) * 0.01, torch.randn(4, 16) * 100
    for x in (small, large):
        assert _relative_error(module(x), linear(x).detach()) < 0.02


@pytest.mark.parametrize("kernel,stride,padding,dilation", [(1, 1, 0, 1), (3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 2, 2)])
def test_im2col_gemm_reproduces_conv2d_in_float(kernel, stride, padding, dilation):
    torch.manual_seed(2)
    conv = nn.Conv2d(6, 10, kernel, stride=stride, padding=padding, dilation=dilation)
    x = torch.randn(2, 6, 9, 7)
    cols, ho, wo = im2col(x, conv.kernel_size, conv.stride, conv.padding, conv.dilation)
    out = (cols @ conv_as_matrix(conv.weight).T + conv.bias).reshape(2, ho, wo, 10).permute(0, 3, 1, 2)
    torch.testing.assert_close(out, conv(x).detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel,stride,padding", [(1, 1, 0), (3, 1, 1), (3, 2, 1)])
def test_int8_conv2d_stays_near_the_float_convolution(kernel, stride, padding):
    torch.manual_seed(3)
    conv, x = nn.Conv2d(8, 16, kernel, stride=stride, padding=padding), torch.randn(2, 8, 7, 7)
    module = Int8Conv2d(conv, act_scale=ref.activation_scale(x), relu=True)
    expected = torch.relu(conv(x)).detach()
    assert module(x).shape == expected.shape
    assert _relative_error(module(x), expected) < 0.02


def test_sparse24_linear_float_equals_the_dense_layer_with_the_same_24_weight():
    torch.manual_seed(4)
    linear = nn.Linear(36, 20)
    with torch.no_grad():
        linear.weight.copy_(ref.prune_24(linear.weight))
    module = Sparse24Linear.from_float(linear)
    x = torch.randn(7, 36)
    torch.testing.assert_close(module(x), linear(x).detach(), rtol=1e-5, atol=1e-5)
    assert module.values.shape == (20, 20) and module.meta.shape == (20, 5)  # K=36 is padded to 40


def test_sparse24_conv2d_int8_stays_near_the_float_24_convolution():
    torch.manual_seed(5)
    conv = nn.Conv2d(16, 8, 3, padding=1)
    _prune_conv_24(conv)
    x = torch.randn(2, 16, 6, 6)
    module = Sparse24Conv2d(conv, int8=True, act_scale=ref.activation_scale(x))
    assert _relative_error(module(x), conv(x).detach()) < 0.02


def test_half_keeps_scales_and_bias_in_float32_and_values_follow_the_model_dtype():
    linear = nn.Linear(16, 8)
    with torch.no_grad():
        linear.weight.copy_(ref.prune_24(linear.weight) * 1e-4)  # scales near fp16's subnormal range
    int8 = Int8Linear.from_float(linear, act_scale=0.1).half()
    sparse = Sparse24Linear.from_float(linear).half()
    assert int8.w_scale.dtype == int8.act_scale.dtype == int8.bias.dtype == torch.float32
    assert int8.w_q.dtype == torch.int8 and sparse.values.dtype == torch.float16


def test_unknown_backend_is_rejected_and_vendor_needs_cuda():
    from harness.kernels import ops

    with pytest.raises(ValueError, match="unknown kernel backend"):
        Int8Linear(torch.randn(4, 4), backend="cutlass")
    assert ops.resolve_backend("auto", torch.device("cpu")) == "reference"
    with pytest.raises(RuntimeError, match="CUDA"):
        ops.resolve_backend("vendor", torch.device("cpu"))


def test_triton_launch_on_cpu_tensors_outside_the_interpreter_is_refused_with_the_fix():
    from harness.kernels.int8_gemm import check_device

    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        check_device(False, torch.zeros(2, dtype=torch.int8))


# --- swap_modules on a trained model -----------------------------------------------------------


@pytest.fixture
def trained(tiny_model):
    import copy

    return copy.deepcopy(tiny_model).eval()


def _agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.argmax(1) == b.argmax(1)).float().mean().item()


def test_int8_swap_replaces_every_layer_and_keeps_the_trained_models_decisions(trained, tiny_dataset):
    x = torch.from_numpy(tiny_dataset.evaluation.x)
    with torch.no_grad():
        before = trained(x)
        report = swap_modules(trained, "int8", calibration=torch.from_numpy(tiny_dataset.calibration.x))
        after = trained(x)
    kinds = {s.became for s in report.layers}
    assert kinds == {"Int8Conv2d", "Int8Linear"} and report.calibrated and len(report.swapped) == 6
    assert _agreement(before, after) >= 0.95
    assert _relative_error(after, before) < 0.05


def test_24_swap_without_pruning_leaves_dense_layers_unchanged_and_says_why(trained):
    report = swap_modules(trained, "2:4")
    assert report.swapped == ()
    assert all("not 2:4" in s.reason for s in report.layers)
    assert "unchanged" in report.summary()


def test_24_swap_with_pruning_equals_the_same_model_pruned_in_float(trained, tiny_dataset):
    import copy

    x = torch.from_numpy(tiny_dataset.evaluation.x[:64])
    float_pruned = copy.deepcopy(trained)
    for m in float_pruned.modules():
        if isinstance(m, nn.Conv2d):
            _prune_conv_24(m)
        elif isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.copy_(ref.prune_24(m.weight))
    report = swap_modules(trained, "2:4", prune=True)
    assert [s.became for s in report.layers] == ["Sparse24Conv2d"] * 5 + ["Sparse24Linear"]
    with torch.no_grad():
        torch.testing.assert_close(trained(x), float_pruned(x), rtol=1e-4, atol=1e-4)


def test_24_int8_swap_uses_sparse_int8_for_24_layers_and_dense_int8_for_the_rest(trained, tiny_dataset):
    layer = trained[-1]  # the head: make only it 2:4 sparse
    with torch.no_grad():
        layer.weight.copy_(ref.prune_24(layer.weight))
    x = torch.from_numpy(tiny_dataset.evaluation.x)
    with torch.no_grad():
        before = trained(x)
        report = swap_modules(trained, "2:4+int8", calibration=torch.from_numpy(tiny_dataset.calibration.x))
        after = trained(x)
    became = {s.name: s.became for s in report.layers}
    assert became[str(len(trained) - 1)] == "Sparse24Linear" and trained[-1].int8
    assert sorted(set(became.values())) == ["Int8Conv2d", "Sparse24Linear"]
    assert _agreement(before, after) >= 0.95


def test_swap_rejects_unknown_modes_bare_layers_and_leaves_grouped_convs_alone():
    with pytest.raises(ValueError, match="unknown swap mode"):
        swap_modules(nn.Sequential(nn.Linear(4, 4)), "int4")
    with pytest.raises(ValueError, match="wrap it"):
        swap_modules(nn.Linear(4, 4), "int8")
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Flatten(), nn.Linear(4, 2))
    report = swap_modules(model, "int8")
    assert report.layers[0].became == "unchanged" and "groups=2" in report.layers[0].reason
    assert isinstance(model[2], Int8Linear)


# --- torch.export programs and the torch-kernels runtime ------------------------------------------


@pytest.fixture
def program(trained, tiny_dataset, tmp_path):
    from harness.export.onnx import export_program

    path = tmp_path / "model.pt2"
    export_program(trained, tiny_dataset.evaluation.x[:1], path)
    return path


def test_lifting_an_exported_program_folds_batch_norm_and_fuses_relu_without_changing_outputs(program, tiny_dataset):
    x = torch.from_numpy(tiny_dataset.evaluation.x[:32])
    gm = torch.export.load(str(program)).module()
    before = gm(x)
    names = lift_layers(gm)
    targets = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
    assert len(names) == 6
    assert not any("batch_norm" in t or "relu" in t or "conv2d" in t or "linear" in t for t in targets)
    assert sum(getattr(gm.get_submodule(n), "fused_relu", False) for n in names) == 5
    torch.testing.assert_close(gm(x), before, rtol=1e-4, atol=1e-4)


def test_load_swapped_program_runs_int8_on_the_reference_path_near_the_program(program, tiny_dataset):
    x = torch.from_numpy(tiny_dataset.evaluation.x[:256])
    before = torch.export.load(str(program)).module()(x)
    gm, report = load_swapped_program(program, "2:4+int8")
    assert len(report.swapped) == 6 and not report.calibrated
    assert _agreement(before, gm(x)) >= 0.95


def test_torch_kernels_runtime_is_registered_for_torch_export_artifacts():
    from harness.runtimes import RUNTIMES

    runner = RUNTIMES.get("torch-kernels")
    assert runner.artifact_format == "torch.export" and "CUDA only" in runner.description


def test_torch_kernels_runtime_refuses_to_activate_without_cuda(program):
    from harness.errors import DeviceUnavailable
    from harness.runtimes.torch_kernels import TorchKernelsRunner

    no_gpu = SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: False), version=SimpleNamespace(cuda=None))
    runner = TorchKernelsRunner(program, torch_module=no_gpu)
    with pytest.raises(DeviceUnavailable, match="no CUDA device") as info:
        with runner:
            pass
    assert info.value.exit_code == 4 and "CPU-only build" in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_torch_kernels_runtime_on_this_cpu_machine_raises_device_unavailable(program):
    from harness.errors import DeviceUnavailable
    from harness.runtimes.torch_kernels import TorchKernelsRunner

    with pytest.raises(DeviceUnavailable):
        with TorchKernelsRunner(program):
            pass


def test_importing_kernels_and_the_runtime_module_pulls_in_neither_torch_nor_triton():
    code = (
        "import sys, harness.kernels, harness.runtimes.torch_kernels; "
        "print(','.join(m for m in ('torch', 'triton') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_runner_infer_contract_is_numpy_in_numpy_out_on_the_reference_module(program, tiny_dataset):
    """What infer_impl does on the GPU, done on the CPU module the runner would hold."""
    gm, _ = load_swapped_program(program, "int8")
    x = tiny_dataset.evaluation.x[:3]
    with torch.inference_mode():
        out = gm(torch.from_numpy(x)).float().numpy()
    assert isinstance(out, np.ndarray) and out.shape == (3, tiny_dataset.n_classes)
