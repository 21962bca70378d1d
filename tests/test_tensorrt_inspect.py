"""What an engine runs, from the inspector JSON (10.x and 11.x schemas) and the "(Sparsity)" log lines.

The JSON fixtures are hand-written from NVIDIA's documented formats (tests/data/tensorrt/README.md).
"""

from __future__ import annotations

import json

import pytest

from harness.errors import InputError
from harness.export.tensorrt import parse_engine_information, parse_sparsity_log
from tests.test_tensorrt_fake import DATA


def fixture(name: str) -> str:
    return (DATA / name).read_text()


def test_tensorrt_10_schema_gives_per_layer_precision_from_the_format_datatype_string():
    report = parse_engine_information(fixture("engine_info_trt10.json"))
    assert report.schema == "tensorrt-10"
    by_name = {layer.name: layer for layer in report.layers}
    assert by_name["/conv1/Conv + /relu1/Relu"].precision == "int8"
    assert by_name["/fc/Gemm"].precision == "fp16"
    assert by_name["Reformatting CopyNode for Input Tensor 0 to /conv1/Conv + /relu1/Relu"].precision == "fp32"
    assert by_name["/conv1/Conv + /relu1/Relu"].type == "Convolution"


def test_tensorrt_10_counts_int8_fp16_and_sparse_layers_of_the_first_profile_only():
    summary = parse_engine_information(fixture("engine_info_trt10.json")).summary()
    assert summary["n_layers"] == 6  # the "[profile 1]" copy is not counted twice
    assert (summary["n_int8_layers"], summary["n_fp16_layers"], summary["n_sparse_layers"]) == (3, 2, 1)
    assert summary["io_tensors"] == ["input", "logits", "input [profile 1]", "logits [profile 1]"]


def test_sparse_means_a_sparse_tactic_name():
    report = parse_engine_information(fixture("engine_info_trt10.json"))
    sparse = [layer.name for layer in report.layers if layer.sparse]
    assert sparse == ["/conv1/Conv + /relu1/Relu"]
    assert "sparse_conv" in report.layers[1].tactic


def test_a_layer_the_build_log_lists_as_picked_sparse_counts_as_sparse_whatever_its_tactic_name():
    report = parse_engine_information(fixture("engine_info_trt10.json"), sparse_layers=["/conv2/Conv + /relu2/Relu"])
    assert report.summary()["n_sparse_layers"] == 2


def test_tensorrt_11_schema_reads_the_separate_datatype_field_and_the_io_tensor_objects():
    report = parse_engine_information(fixture("engine_info_trt11.json"))
    assert report.schema == "tensorrt-11" and report.io_tensors == ("input", "logits")
    assert [layer.precision for layer in report.layers] == ["fp16", "int8", "int8"]  # the signal layer is dropped
    summary = report.summary()
    assert (summary["n_int8_layers"], summary["n_fp16_layers"], summary["n_sparse_layers"]) == (2, 1, 1)


def test_tensorrt_11_layers_are_recognised_by_their_datatype_field_even_without_io_tensors():
    data = json.loads(fixture("engine_info_trt11.json"))
    del data["I/O Tensors"]
    assert parse_engine_information(data).schema == "tensorrt-11"


def test_an_engine_built_without_detailed_verbosity_is_refused_with_the_fix():
    with pytest.raises(InputError, match="ProfilingVerbosity.DETAILED"):
        parse_engine_information(json.dumps({"Layers": ["conv1", "fc"], "Bindings": ["input", "logits"]}))


def test_information_without_a_layers_list_is_refused():
    with pytest.raises(InputError, match="no 'Layers' list"):
        parse_engine_information("{}")


def test_tactic_value_stands_in_when_there_is_no_tactic_name():
    report = parse_engine_information(fixture("engine_info_trt10.json"))
    assert report.layers[0].tactic == "0x00000000000003e8" and not report.layers[0].sparse


def test_sparsity_log_lines_give_eligible_and_picked_layers():
    log = parse_sparsity_log(fixture("build_log_sparse.txt").splitlines())
    assert log.seen
    assert log.eligible == ("/conv1/Conv + /relu1/Relu", "/conv2/Conv + /relu2/Relu", "/fc/Gemm")
    assert log.picked == ("/conv1/Conv + /relu1/Relu",)


def test_sparsity_log_with_an_empty_picked_list_means_dense_kernels_won():
    log = parse_sparsity_log(fixture("build_log_dense_won.txt").splitlines())
    assert log.seen and log.eligible == ("/conv1/Conv + /relu1/Relu",) and log.picked == ()


def test_a_build_log_without_sparsity_lines_says_so():
    log = parse_sparsity_log(["[TRT] [I] Engine generation completed in 1.2 seconds."])
    assert not log.seen and log.to_dict() == {"seen": False, "eligible": (), "picked": ()}
