"""``harness inspect``: per-layer facts and whole-model totals read from any ONNX file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.config import QuantSpec
from harness.errors import InputError
from harness.export.report import inspect_model


def _torch_counts(model, x) -> tuple[int, int]:
    """MACs per sample (forward hooks on conv / linear) and conv / linear parameters once BN is folded."""
    import torch
    import torch.nn as nn

    macs = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            macs.append(output[0].numel() * k)
        else:
            macs.append(output[0].numel() * module.in_features)

    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [m.register_forward_hook(hook) for m in layers]
    with torch.no_grad():
        model.eval()(torch.from_numpy(x[:1]))
    for h in handles:
        h.remove()
    params = sum(m.weight.numel() + (m.out_channels if isinstance(m, nn.Conv2d) else m.bias.numel()) for m in layers)
    return sum(macs), params


def test_totals_match_an_independent_count_from_the_torch_model(tiny_onnx, tiny_model, tiny_dataset):
    report = inspect_model(tiny_onnx)
    macs, params = _torch_counts(tiny_model, tiny_dataset.evaluation.x)
    assert report.macs == macs and report.macs_unavailable_reason is None
    assert report.parameters == params  # BN folded into each conv as a bias
    assert report.precision == "fp32" and report.n_quantized_nodes == 0 and report.opset == 20
    assert [layer.op_type for layer in report.layers] == ["Conv"] * 5 + ["Gemm"]
    stem = report.layers[0]
    assert stem.two_four == "n/a (reduction 1)" and not stem.quantized and stem.precision == "fp32"
    assert report.file_mb == pytest.approx(tiny_onnx.stat().st_size / 2**20)


def test_a_qdq_file_reports_every_layer_quantized_with_the_same_macs(tiny_onnx, tiny_dataset, tmp_path):
    from harness.compress.quantize import quantize_int8_static

    out = tmp_path / "q.onnx"
    quantize_int8_static(tiny_onnx, out, tiny_dataset.calibration.x, QuantSpec(), reduce_range=True)
    report, dense = inspect_model(out), inspect_model(tiny_onnx)
    assert report.precision == "int8" and report.n_quantized_nodes > 0
    assert all(layer.quantized and layer.precision == "int8" for layer in report.layers)
    assert report.macs == dense.macs and report.parameters == dense.parameters


def test_missing_and_corrupt_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="ONNX file not found"):
        inspect_model(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    with pytest.raises(InputError, match="is not a readable ONNX model"):
        inspect_model(bad)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", "inspect", *args], capture_output=True, text=True, timeout=120)


def test_cli_prints_json_with_per_layer_facts_and_totals(tiny_onnx):
    proc = _cli(str(tiny_onnx), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {"parameters", "macs", "file_mb", "precision", "layers"} <= doc.keys()
    assert {"sparsity", "two_four", "quantized", "precision", "macs"} <= doc["layers"][0].keys()
    assert doc["macs"] == inspect_model(tiny_onnx).macs


def test_cli_table_names_the_columns_and_a_missing_file_exits_2_with_one_line(tiny_onnx, tmp_path):
    proc = _cli(str(tiny_onnx))
    assert proc.returncode == 0 and "2:4" in proc.stdout and "MACs per sample" in proc.stdout
    proc = _cli(str(tmp_path / "nope.onnx"))
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: model file not found")
    assert len(proc.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    proc = _cli(str(bad))  # a file that is there but unusable stays unusable input
    assert proc.returncode == 5 and len(proc.stderr.strip().splitlines()) == 1


def test_onnx_tensors_producer_and_op_histogram(tiny_onnx):
    import onnx

    report = inspect_model(tiny_onnx)
    graph = onnx.load(str(tiny_onnx)).graph
    (x,) = report.inputs
    assert x.name == graph.input[0].name and x.dtype == "float32" and len(x.shape) == 4
    assert all(isinstance(d, int | str) for d in x.shape) and x.shape[1:] == [1, 8, 8]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert x.shape[0] == (dims[0].dim_param or "?" if not dims[0].HasField("dim_value") else dims[0].dim_value)
    (y,) = report.outputs
    assert y.dtype == "float32" and y.shape[-1] == 10
    assert report.producer_name == "pytorch" and report.producer_version
    assert report.op_histogram["Conv"] == 5 and sum(report.op_histogram.values()) == len(graph.node)
    assert list(report.op_histogram.values()) == sorted(report.op_histogram.values(), reverse=True)


def test_pt2_signature_and_call_function_histogram_in_table_and_json(tiny_onnx):
    from harness.export.pt2 import load_program
    from harness.export.report import inspect_program_file

    pt2 = tiny_onnx.parent / "model.pt2"
    report = inspect_program_file(pt2)
    program = load_program(pt2)
    assert [t.name for t in report.inputs] == list(program.graph_signature.user_inputs)
    assert report.inputs[0].dtype == "float32" and report.inputs[0].shape[1:] == [1, 8, 8]
    assert report.outputs[0].shape[-1] == 10
    calls = [n for n in program.graph.nodes if n.op == "call_function"]
    assert sum(report.op_histogram.values()) == len(calls)
    assert any("conv" in op for op in report.op_histogram)
    assert report.parameters == sum(p.numel() for p in program.parameters())
    proc = _cli(str(pt2), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["op_histogram"] == report.op_histogram and doc["inputs"][0]["name"] == report.inputs[0].name
    proc = _cli(str(pt2))
    assert proc.returncode == 0 and "call_function targets" in proc.stdout and report.inputs[0].name in proc.stdout
    proc = _cli(str(tiny_onnx))
    assert proc.returncode == 0 and "op types" in proc.stdout and "producer pytorch" in proc.stdout
