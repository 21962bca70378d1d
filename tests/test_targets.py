"""Device profiles: every shipped profile loads, a bad one is refused naming the key, and
check_target / ExperimentSpec.target refuse a runtime or precision the target lacks."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.experiment import load_experiment
from harness.meters import METERS
from harness.meters.rails import RAIL_MAP
from harness.runtimes import RUNTIMES
from harness.targets import TARGETS_DIR, check_target, list_targets, load_target

EXPECTED = {"jetson-agx-orin", "jetson-orin-nx", "jetson-orin-nano", "jetson-agx-xavier", "jetson-xavier-nx",
            "jetson-nano", "nvidia-gpu", "x86-cpu", "arm-cpu"}


def write_variant(tmp_path, base: str, edit):
    """A copy of a shipped profile with ``edit(text) -> text`` applied, under its own name."""
    path = tmp_path / f"{base}.toml"
    path.write_text(edit((TARGETS_DIR / f"{base}.toml").read_text()))
    return path


def test_every_issue_target_has_a_valid_profile():
    targets = {t.name: t for t in list_targets()}
    assert set(targets) == EXPECTED
    for t in targets.values():
        assert set(t.runtimes) <= set(RUNTIMES.names()) and t.energy.meter in METERS
        assert t.energy.rail_map is None or t.energy.rail_map in RAIL_MAP


def test_jetson_profiles_reference_the_meters_rail_map_instead_of_copying_rails():
    from harness.targets import EnergySpec

    assert set(EnergySpec.model_fields) == {"meter", "fallback", "rail_map"}  # no room for a copy of the rails
    for t in list_targets():
        if t.kind == "jetson":
            assert t.energy.meter == "jetson" and t.energy.fallback == "tegrastats" and t.energy.rail_map in RAIL_MAP


def test_board_facts_match_deploy_research():
    orin, nano_orin, nx = load_target("jetson-agx-orin"), load_target("jetson-orin-nano"), load_target("jetson-orin-nx")
    assert orin.dla.cores == 2 and orin.gpu.sparse_tensor_cores and orin.tensorrt_majors == [10, 11]
    assert nano_orin.dla is None and nano_orin.tensorrt_majors == [10] and nx.tensorrt_majors == [10]
    assert [r.version for r in orin.tensorrt] == ["10.3", "11.4.1"]
    assert not load_target("jetson-agx-xavier").gpu.sparse_tensor_cores
    assert "int8" not in load_target("jetson-nano").precisions
    assert load_target("nvidia-gpu").energy.meter == "nvml" and load_target("x86-cpu").energy.meter == "rapl"


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('"onnxruntime-cuda"', '"onnxruntime-cudaa"'), "runtimes: .*unknown runtime 'onnxruntime-cudaa'"),
    (lambda s: s.replace('meter = "jetson"', 'meter = "jetsn"'), "energy.meter: .*unknown energy meter 'jetsn'"),
    (lambda s: s.replace('precisions = ["fp32", "fp16", "int8"]', 'precisions = ["fp32", "fp12"]'),
     "precisions.1: .*fp12"),
    (lambda s: s.replace('rail_map = "Jetson AGX Orin"', 'rail_map = "Jetson AGX Orinn"'), "energy.rail_map: .*RAIL_MAP"),
    (lambda s: s + "\nfavourite_colour = 'green'\n", "favourite_colour: unknown key"),
    (lambda s: s.replace("cores = 2", "cores = 0"), "dla.cores: "),
    (lambda s: s.replace('version = "10.3"', 'version = "ten"'), "tensorrt.0.version: "),
])
def test_an_invalid_profile_is_refused_on_load_naming_the_key(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message):
        load_target(write_variant(tmp_path, "jetson-agx-orin", edit))


def test_a_jetson_profile_with_a_rail_meter_needs_a_rail_map(tmp_path):
    path = write_variant(tmp_path, "jetson-orin-nano", lambda s: s.replace('rail_map = "Jetson Orin Nano"\n', ""))
    with pytest.raises(ConfigError, match="rail_map is required"):
        load_target(path)


def test_a_profile_whose_name_differs_from_its_file_is_refused(tmp_path):
    path = tmp_path / "renamed.toml"
    path.write_text((TARGETS_DIR / "x86-cpu.toml").read_text())
    with pytest.raises(ConfigError, match="must match the file name 'renamed'"):
        load_target(path)


def test_unknown_target_name_suggests_the_closest():
    with pytest.raises(ConfigError, match="unknown target 'jetson-orin-nan'; did you mean 'jetson-orin-nano'"):
        load_target("jetson-orin-nan")


def test_check_target_returns_the_profile_when_it_offers_everything_asked():
    spec = load_experiment(None, {"runtimes": ["onnxruntime", "torch"]})
    assert check_target(spec, "x86-cpu").name == "x86-cpu"


def test_check_target_names_the_runtime_the_target_lacks():
    spec = load_experiment(None, {"runtimes": ["onnxruntime", "tensorrt"]})
    with pytest.raises(ConfigError, match="target x86-cpu has no runtime 'tensorrt'"):
        check_target(spec, "x86-cpu")


def test_check_target_names_the_precision_the_target_lacks():
    spec = load_experiment(None, {"runtimes": ["onnxruntime"], "quantize": [{"precision": "int8"}]})
    with pytest.raises(ConfigError, match="target jetson-nano has no int8 precision"):
        check_target(spec, "jetson-nano")


def test_check_target_refuses_tensorrt_on_boards_stuck_on_tensorrt_8():
    spec = load_experiment(None, {"runtimes": ["tensorrt"]})
    with pytest.raises(ConfigError, match="jetson-xavier-nx runs TensorRT 8.5.*TensorRT 10 or 11 only"):
        check_target(spec, "jetson-xavier-nx")
    assert check_target(spec, "jetson-orin-nano").name == "jetson-orin-nano"


def test_experiment_target_is_checked_before_any_work():
    with pytest.raises(ConfigError, match="target x86-cpu has no runtime 'torch-cuda'"):
        load_experiment(None, {"target": "x86-cpu", "runtimes": ["onnxruntime", "torch-cuda"]})
    with pytest.raises(ConfigError, match="unknown target 'pi-5'"):
        load_experiment(None, {"target": "pi-5"})
    assert load_experiment(None, {"target": "jetson-agx-orin"}).target == "jetson-agx-orin"


def test_experiment_without_a_target_is_unchanged():
    assert load_experiment(None).target is None


def test_an_fp16_variant_is_refused_on_cpu_targets_and_accepted_on_orin():
    spec = load_experiment(None, {"runtimes": ["onnxruntime"], "quantize": [{"precision": "fp16"}]})
    with pytest.raises(ConfigError, match="target x86-cpu has no fp16 precision"):
        check_target(spec, "x86-cpu")
    assert check_target(spec, "jetson-orin-nano").name == "jetson-orin-nano"
