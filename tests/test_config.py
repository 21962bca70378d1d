"""Experiment validation: typos, wrong types and impossible values fail before any work, naming the key."""

from __future__ import annotations

import pytest

from harness.config import ExperimentSpec
from harness.errors import ConfigError
from harness.experiment import load_experiment
from tests.conftest import REPO


def write(tmp_path, text: str):
    path = tmp_path / "experiment.toml"
    path.write_text(text)
    return path


def test_embedded_default_is_valid_and_asks_for_at_least_ten_variants():
    from harness.compress.variants import expand_variants

    spec = load_experiment(None)
    names = [v.name for v in expand_variants(spec, "key")]
    assert len(names) >= 10
    assert "dense" in names and any(n.endswith("+int8") for n in names)
    assert max(v.prune_amount for v in expand_variants(spec, "key") if v.prune_method == "magnitude") >= 0.9
    assert spec.dataset.long_tail is not None


def test_example_experiment_in_docs_is_valid():
    spec = load_experiment(REPO / "docs" / "examples" / "experiment.toml")
    assert isinstance(spec, ExperimentSpec)


def test_unknown_key_is_rejected_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset\.imagesize: unknown key"):
        load_experiment(write(tmp_path, "[dataset]\nimagesize = 32\n"))


def test_impossible_sparsity_is_rejected_naming_the_key(tmp_path):
    path = write(tmp_path, '[[prune]]\nmethod = "magnitude"\nsparsity = [0.5, 1.5]\n')
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert "prune.0.magnitude.sparsity.1" in message and "1.5" in message
    assert "\n" not in message


def test_wrong_type_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        load_experiment(write(tmp_path, '[train]\nepochs = "many"\n'))


def test_unknown_dataset_name_suggests_the_closest(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset\.name: unknown dataset 'digit'; did you mean 'digits'"):
        load_experiment(write(tmp_path, '[dataset]\nname = "digit"\n'))


def test_unknown_runtime_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="unknown runtime 'tensorrtx'"):
        load_experiment(write(tmp_path, 'runtimes = ["tensorrtx"]\n'))


@pytest.mark.parametrize("meter", ["auto", "null", "rapl", "nvml", "jetson", "tegrastats", "external"])
def test_every_registered_energy_meter_and_auto_are_accepted(meter):
    assert load_experiment(None, {"measure": {"energy_meter": meter}}).measure.energy_meter == meter


def test_an_unknown_energy_meter_is_rejected_naming_the_choices():
    with pytest.raises(ConfigError) as info:
        load_experiment(None, {"measure": {"energy_meter": "rapll"}})
    assert str(info.value) == (
        "<embedded default.toml>: measure.energy_meter: unknown energy meter 'rapll'; did you mean 'rapl'? "
        "choose 'auto' (the best meter this machine has) or one of: external, jetson, null, nvml, rapl, tegrastats"
    )


def test_the_energy_meters_accepted_are_the_registry_s():
    from harness.meters import METERS

    for name in METERS.names():
        load_experiment(None, {"measure": {"energy_meter": name}})


def test_split_fractions_must_sum_to_one(tmp_path):
    with pytest.raises(ConfigError, match="sum to 1"):
        load_experiment(write(tmp_path, "[dataset.split]\ntrain = 0.5\ncalibration = 0.1\nevaluation = 0.2\n"))


def test_selection_batch_must_be_measured(tmp_path):
    with pytest.raises(ConfigError, match="selection.batch_size 4 is not among"):
        load_experiment(write(tmp_path, "[measure]\nbatch_sizes = [1, 8]\n[selection]\nbatch_size = 4\n"))


def test_unknown_objective_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="unknown objective metric 'speed'"):
        load_experiment(write(tmp_path, '[selection]\nobjectives = ["speed:max", "top1:max"]\n'))


def test_missing_file_and_invalid_toml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_experiment(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_experiment(write(tmp_path, "name = \n"))


def test_cli_overrides_are_validated_like_file_values():
    spec = load_experiment(None, {"measure": {"profile": "quick"}, "runtimes": ["onnxruntime"]})
    assert spec.measure.profile == "quick" and spec.runtimes == ["onnxruntime"]
    assert spec.measure.batch_sizes == load_experiment(None).measure.batch_sizes  # merged, not replaced
    with pytest.raises(ConfigError, match="measure.profile"):
        load_experiment(None, {"measure": {"profile": "fast"}})


APPLY_TO = '[[prune]]\nmethod = "channel"\nratio = [0.3, 0.5]\n[[quantize]]\napply_to = ["dense"]\n[[quantize]]\n'


def test_an_apply_to_naming_no_variant_is_rejected_with_the_valid_names(tmp_path):
    path = write(tmp_path, APPLY_TO + 'precision = "fp16"\napply_to = ["channel-*", "chanel-0.5"]\n')
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value) == (f"{path}: quantize.1.apply_to: 'chanel-0.5' names no variant of this experiment "
                               "(variants: dense, channel-0.3, channel-0.5)")


def test_apply_to_patterns_that_match_are_accepted(tmp_path):
    spec = load_experiment(write(tmp_path, APPLY_TO + 'precision = "fp16"\napply_to = ["channel-0.?", "*"]\n'))
    assert spec.quantize[1].apply_to == ["channel-0.?", "*"]


def test_harness_run_refuses_an_unmatched_apply_to_before_any_work(tmp_path):
    import subprocess
    import sys

    path = write(tmp_path, '[[quantize]]\napply_to = ["magnitude-0.5"]\n')
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(path), "--results-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "quantize.0.apply_to: 'magnitude-0.5' names no variant" in lines[0]
    assert "(variants: dense)" in lines[0]
    assert not (tmp_path / "r" / "harness.db").exists()
