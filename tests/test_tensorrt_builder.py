"""The TensorRT engine builder against FakeTensorRT: version gate, flag mapping, profiles, caches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.errors import ConfigError, InputError, MissingDependency
from harness.export.tensorrt import (
    EngineSpec,
    build_engine,
    engine_cache_key,
    engine_spec_for_target,
    load_tensorrt,
    optimization_profiles,
    plan_build,
    tensorrt_major,
)
from harness.targets import load_target
from tests.test_tensorrt_fake import DATA, FakeTensorRT


def write_onnx(path, batch="N", chw=(1, 8, 8)):
    """A Flatten -> Gemm classifier with 10 outputs; ``batch`` a name (symbolic) or an int."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    features = int(np.prod(chw)) if all(isinstance(d, int) for d in chw) else 64
    weight = numpy_helper.from_array(np.ones((features, 10), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"]), helper.make_node("Gemm", ["flat", "W"], ["logits"])],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, *chw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 10])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture
def onnx_path(tmp_path):
    return write_onnx(tmp_path / "model.onnx")


def build(onnx_path, cache, trt, **spec):
    return build_engine(onnx_path, EngineSpec(**{"batch_sizes": (1, 8), **spec}), cache, device_name="Fake GPU",
                        trt=trt)


# ---------------------------------------------------------------------------- version gate


def test_load_tensorrt_raises_missing_dependency_with_install_hint_when_tensorrt_is_absent():
    with pytest.raises(MissingDependency, match="tensorrt") as info:
        load_tensorrt()
    assert "tensorrt-cu13" in info.value.hint and "system-site-packages" in info.value.hint


@pytest.mark.parametrize("version, major", [("10.3.0.30", 10), ("11.4.1", 11)])
def test_version_gate_reads_the_major_from_the_version_string(version, major):
    assert tensorrt_major(FakeTensorRT(version)) == major


@pytest.mark.parametrize("version", ["8.6.1", "12.0.0"])
def test_version_gate_refuses_majors_without_a_code_path(version):
    with pytest.raises(MissingDependency, match=f"found {version}"):
        tensorrt_major(FakeTensorRT(version))


# ---------------------------------------------------------------------------- flag mapping


def test_tensorrt_10_builds_a_pre_typed_onnx_strongly_typed_with_no_precision_flags():
    plan = plan_build(FakeTensorRT("10.3.0"), EngineSpec((1,)), "input", (-1, 1, 8, 8))
    assert plan.network_flags == ("STRONGLY_TYPED",) and plan.builder_flags == ()


def test_tensorrt_10_legacy_precision_flags_replace_strong_typing():
    plan = plan_build(FakeTensorRT("10.3.0"), EngineSpec((1,), precision_flags=("FP16", "INT8")), "input", (-1, 1, 8, 8))
    assert plan.network_flags == () and plan.builder_flags == ("FP16", "INT8")


def test_tensorrt_11_uses_no_network_flag_and_no_precision_flag():
    plan = plan_build(FakeTensorRT("11.4.1"), EngineSpec((1,), sparse_weights=True), "input", (-1, 1, 8, 8))
    assert plan.network_flags == () and plan.builder_flags == ("SPARSE_WEIGHTS",)


def test_tensorrt_11_refuses_a_precision_flag_and_says_to_convert_the_onnx():
    with pytest.raises(ConfigError, match="strongly typed.*FP16.*autocast"):
        plan_build(FakeTensorRT("11.4.1"), EngineSpec((1,), precision_flags=("FP16",)), "input", (-1, 1, 8, 8))


@pytest.mark.parametrize("version", ["10.3.0", "11.4.1"])
def test_sparse_weights_and_dla_gpu_fallback_map_to_builder_flags_on_both_majors(version):
    plan = plan_build(FakeTensorRT(version), EngineSpec((1,), sparse_weights=True, dla_core=1), "input", (-1, 1, 8, 8))
    assert set(plan.builder_flags) == {"SPARSE_WEIGHTS", "GPU_FALLBACK"} and plan.dla_core == 1


@pytest.mark.parametrize("version", ["10.8.0", "11.0.0", "11.4.0"])
def test_dla_is_refused_on_tensorrt_releases_without_dla_support(version):
    with pytest.raises(ConfigError, match=f"TensorRT {version} cannot use DLA"):
        plan_build(FakeTensorRT(version), EngineSpec((1,), dla_core=0), "input", (-1, 1, 8, 8))


def test_unknown_precision_flag_is_rejected_naming_the_known_ones():
    with pytest.raises(ConfigError, match="BF16.*FP16, INT8"):
        EngineSpec((1,), precision_flags=("BF16",))


def test_builder_sets_flags_by_name_and_never_touches_explicit_batch(onnx_path, tmp_path):
    trt = FakeTensorRT("11.4.1")
    build(onnx_path, tmp_path / "cache", trt, sparse_weights=True)
    assert trt.names("create_network") == [(0,)]
    assert trt.names("set_flag") == [("SPARSE_WEIGHTS",)]
    assert ("config.profiling_verbosity", trt.ProfilingVerbosity.DETAILED) in trt.calls
    assert trt.names("set_memory_pool_limit") == [("WORKSPACE", 1024 * 2**20)]


def test_builder_on_tensorrt_10_sets_the_strongly_typed_bit_from_the_enum(onnx_path, tmp_path):
    trt = FakeTensorRT("10.3.0")
    build(onnx_path, tmp_path / "cache", trt)
    assert trt.names("create_network") == [(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED),)]


def test_dla_build_sets_device_type_core_and_gpu_fallback(onnx_path, tmp_path):
    trt = FakeTensorRT("10.3.0")
    build(onnx_path, tmp_path / "cache", trt, dla_core=1)
    assert ("config.default_device_type", trt.DeviceType.DLA) in trt.calls and ("config.DLA_core", 1) in trt.calls
    assert ("GPU_FALLBACK",) in trt.names("set_flag")


def test_engine_spec_for_target_uses_dla_only_where_the_board_has_that_core():
    orin, nano = load_target("jetson-agx-orin"), load_target("jetson-orin-nano")
    spec = engine_spec_for_target(orin, [1, 8], sparse_weights=True, use_dla=True, dla_core=1)
    assert spec.dla_core == 1 and spec.sparse_weights and spec.workspace_mb == 512
    with pytest.raises(ConfigError, match="no DLA core 0"):
        engine_spec_for_target(nano, [1], sparse_weights=False, use_dla=True)
    xavier = load_target("jetson-agx-xavier")
    assert not engine_spec_for_target(xavier, [1], sparse_weights=True).sparse_weights  # no sparse tensor cores


# ---------------------------------------------------------------------------- profiles


def test_one_static_profile_per_batch_size_sorted_and_deduplicated():
    assert optimization_profiles([8, 1, 8], (-1, 1, 8, 8), None) == (
        ((1, 1, 8, 8),) * 3, ((8, 1, 8, 8),) * 3)


def test_static_batch_onnx_is_refused_for_other_batch_sizes_and_needs_no_profile_for_its_own():
    with pytest.raises(ConfigError, match="static batch of 1.*dynamic batch"):
        optimization_profiles([1, 8], (1, 1, 8, 8), None)
    assert optimization_profiles([1], (1, 1, 8, 8), None) == ()


def test_symbolic_chw_needs_input_shape_and_a_wrong_input_shape_is_refused():
    with pytest.raises(ConfigError, match="symbolic: give input_shape"):
        optimization_profiles([1], (-1, -1, 8, 8), None)
    assert optimization_profiles([2], (-1, -1, 8, 8), (3, 8, 8)) == (((2, 3, 8, 8),) * 3,)
    with pytest.raises(ConfigError, match="does not match"):
        optimization_profiles([1], (-1, 1, 8, 8), (3, 8, 8))


def test_non_positive_batch_size_is_refused():
    with pytest.raises(ConfigError, match="positive"):
        EngineSpec((0, 1))


def test_builder_adds_the_profiles_for_the_onnx_input_name(onnx_path, tmp_path):
    trt = FakeTensorRT("10.3.0")
    build(onnx_path, tmp_path / "cache", trt)
    assert trt.names("set_shape") == [("input", (1, 1, 8, 8), (1, 1, 8, 8), (1, 1, 8, 8)),
                                      ("input", (8, 1, 8, 8), (8, 1, 8, 8), (8, 1, 8, 8))]


# ---------------------------------------------------------------------------- caches


def test_second_build_is_a_cache_hit_that_never_creates_a_builder(onnx_path, tmp_path):
    first = build(onnx_path, tmp_path / "cache", FakeTensorRT("10.3.0"))
    trt = FakeTensorRT("10.3.0")
    second = build(onnx_path, tmp_path / "cache", trt)
    assert not first.cache_hit and second.cache_hit and second.path == first.path and second.path.exists()
    assert trt.calls == [] and second.layers == first.layers


def test_cache_key_changes_with_tensorrt_version_device_flags_profiles_and_onnx(onnx_path, tmp_path):
    batch_1_to_8 = EngineSpec((1, 8))

    def key(version="10.3.0", device="Orin", spec=batch_1_to_8, sha="a" * 64):
        return engine_cache_key(sha, plan_build(FakeTensorRT(version), spec, "input", (-1, 1, 8, 8)), device)

    base = key()
    variants = [key(version="10.3.1"), key(device="RTX 4090"), key(spec=EngineSpec((1, 8), sparse_weights=True)),
                key(spec=EngineSpec((1, 4))), key(sha="b" * 64)]
    assert base == key() and base not in variants and len(set(variants)) == len(variants)


def test_timing_cache_is_persisted_per_device_and_version_and_fed_to_the_next_build(onnx_path, tmp_path):
    cache = tmp_path / "cache"
    first = build(onnx_path, cache, FakeTensorRT("10.3.0"))
    assert first.timing_cache.name == "timing-fake-gpu-trt10.3.0.cache"
    assert first.timing_cache.read_bytes() == b"+timings"
    trt = FakeTensorRT("10.3.0")
    build(onnx_path, cache, trt, sparse_weights=True)  # another engine, same device and version
    assert trt.names("create_timing_cache") == [(b"+timings",)] and trt.names("set_timing_cache") == [(False,)]


# ---------------------------------------------------------------------------- what is stored


def test_build_stores_the_inspector_summary_and_sparsity_lines_beside_the_engine(onnx_path, tmp_path):
    log = (DATA / "build_log_sparse.txt").read_text().splitlines()
    result = build(onnx_path, tmp_path / "cache", FakeTensorRT("10.3.0", build_log=log), sparse_weights=True)
    meta = json.loads(result.path.with_suffix(".json").read_text())
    assert meta["layers"]["n_int8_layers"] == 3 and meta["layers"]["n_sparse_layers"] == 1
    assert meta["sparsity"]["picked"] == ["/conv1/Conv + /relu1/Relu"]
    assert meta["plan"]["builder_flags"] == ["SPARSE_WEIGHTS"] and meta["device"] == "Fake GPU"


def test_parse_failure_is_an_input_error_carrying_the_parser_message(onnx_path, tmp_path):
    with pytest.raises(InputError, match="cannot parse.*unsupported attribute"):
        build(onnx_path, tmp_path / "cache", FakeTensorRT("10.3.0", parse_ok=False))


def test_build_failure_is_an_input_error_quoting_the_log_and_leaves_no_engine(onnx_path, tmp_path):
    with pytest.raises(InputError, match="Could not find any implementation") as info:
        build(onnx_path, tmp_path / "cache", FakeTensorRT("10.3.0", build_ok=False))
    assert "workspace" in info.value.hint and not list((tmp_path / "cache").glob("*.engine"))
