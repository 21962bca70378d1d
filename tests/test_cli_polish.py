"""Command-line polish: version, flags, piped tables, one number format, overrides, exports."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from harness.cli import app


def harness(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_version_prints_the_installed_version_and_exits_0():
    from importlib.metadata import version

    proc = harness("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"harness {version('harness')}"


def test_boolean_options_are_flags_without_a_type_placeholder_in_help():
    for command in (["run"], ["results", "export"], ["results", "show"], ["inspect"], ["worker"], ["train"], []):
        result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        for noise in ("<bool>", "BOOLEAN", "[default: False]", "--no-"):
            assert noise not in result.output, (command, noise, result.output)
    run_help = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output
    assert "--quick " in run_help and "--resume " in run_help and "--json " in run_help


def test_the_run_table_prints_metrics_in_the_catalog_format():
    from types import SimpleNamespace

    from rich.console import Console

    from harness.cli._output import points_table
    from harness.metric_catalog import format_value
    from tests.points import make_point

    point = make_point("dense@onnxruntime/b1", top1=0.9812, p50=0.4963)
    report = SimpleNamespace(run_id="r1", selection=SimpleNamespace(point_id=point.point_id), points=[point])
    console = Console(width=300, record=True)
    console.print(points_table(report))
    text = console.export_text()
    assert format_value("top1", 0.9812) == "98.1%" and "98.1%" in text
    assert format_value("p50_ms", 0.4963) in text


def test_piped_results_show_prints_long_point_ids_whole(tmp_path):
    import json
    from types import SimpleNamespace

    from harness.store import open_store
    from tests.points import make_point

    name = "magnitude-0.5+finetune+int8-per-channel-calibrated-on-the-long-tailed-split-" + "x" * 20
    store = open_store(tmp_path / "harness.db")
    store.create_run("r1", "exp", "2026-01-01T00:00:00", json.dumps({}), {"cpu": "x"}, "/tmp")
    store.upsert_variant("r1", SimpleNamespace(variant_id=name, name=name, prune_method="magnitude", prune_amount=0.5,
                                               precision="int8", seed=0, to_record=dict), "ok", None, {})
    point = make_point(name, name=name, prune="magnitude", precision="int8")
    store.add_result("r1", point.variant_id, "onnxruntime", [(point, None, None)])
    store.close()
    proc = harness("results", "show", "r1", "--store", str(tmp_path / "harness.db"))  # stdout is a pipe
    assert proc.returncode == 0, proc.stderr
    assert point.point_id in proc.stdout and "…" not in proc.stdout
    assert any(point.point_id in line for line in proc.stdout.splitlines())  # on one line, not folded


def test_set_assignments_become_nested_overrides_that_change_the_spec():
    from harness.cli.run import flag_overrides
    from harness.experiment import load_experiment, set_overrides

    assert set_overrides(["train.epochs=3", "measure.batch_sizes=[1,4]", "runtimes=['onnxruntime']",
                          "dataset.name=digits", "model.options={ width = 0.5 }", "train.epochs=4"]) == {
        "train": {"epochs": 4}, "measure": {"batch_sizes": [1, 4]}, "runtimes": ["onnxruntime"],
        "dataset": {"name": "digits"}, "model": {"options": {"width": 0.5}},
    }
    overrides = flag_overrides(assignments=["train.epochs=3", "measure.batch_sizes=[1,4]", "measure.profile=standard",
                                            "seed=5"], quick=True, seed=7)
    assert overrides["measure"] == {"batch_sizes": [1, 4], "profile": "quick"}  # the named flag wins
    spec = load_experiment(None, overrides)
    assert spec.train.epochs == 3 and spec.measure.batch_sizes == [1, 4] and spec.seed == 7


def test_set_with_an_unknown_key_or_a_bad_value_is_reported_like_the_file(tmp_path):
    import pytest

    from harness.errors import ConfigError
    from harness.experiment import load_experiment, set_overrides

    with pytest.raises(ConfigError, match="train.epochz"):
        load_experiment(None, set_overrides(["train.epochz=3"]))
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        set_overrides(["train.epochs"])
    proc = harness("run", "--set", "train.epochz=3", "--results-dir", str(tmp_path))
    assert proc.returncode == 2 and "train.epochz" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = harness("run", "--set", "measure.batch_sizes=[0]", "--results-dir", str(tmp_path))
    assert proc.returncode == 2 and "measure.batch_sizes" in proc.stderr, proc.stderr
    assert not (tmp_path / "harness.db").exists()  # rejected before any work
