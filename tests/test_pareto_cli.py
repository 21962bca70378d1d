"""`harness pareto` over a store holding two targets: fronts per target and across, policies, parsing errors."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from harness.cli import app, main
from harness.compress.variants import Variant
from harness.config import QuantSpec
from harness.fleet import queue
from harness.store import open_store
from harness.store.views import front_table, latest_run, run_target
from tests.points import make_point

#: (name, prune, precision, p50 on the CPU, p50 on the Orin, top-1, worst-class recall)
VARIANTS = [
    ("dense", "none", "fp32", 4.0, 2.0, 0.95, 0.90),
    ("mag", "magnitude", "fp32", 3.0, 1.5, 0.948, 0.89),
    ("int8", "none", "int8", 1.0, 1.8, 0.945, 0.60),  # fast on the CPU, hurts the worst class
]


def _add_run(store, run_id: str, started: str, experiment: dict, column: int) -> None:
    store.create_run(run_id, "exp", started, json.dumps(experiment), {"cpu": "x"}, "/tmp")
    for name, prune, precision, *p50s, top1, worst in VARIANTS:
        quant = None if precision == "fp32" else QuantSpec(precision=precision)
        v = Variant(name, name, prune, 0.5, {}, quant, None)
        store.upsert_variant(run_id, v, "ok", None, {})
        p = make_point(name, p50=p50s[column], top1=top1, worst=worst, name=name, prune=prune, precision=precision)
        store.add_result(run_id, name, "onnxruntime", [(p, None, None)])


@pytest.fixture
def two_targets(tmp_path):
    """Run 'cpu' names its target in the experiment; run 'orin' was queued for its target on a fleet."""
    path = tmp_path / "harness.db"
    store = open_store(path)
    _add_run(store, "cpu", "2026-01-01T00:00:00", {"target": "x86-cpu", "selection": {"weights": {"top1": 1}}}, 0)
    _add_run(store, "orin", "2026-01-02T00:00:00", {"target": None, "selection": {"max_worst_class_drop": 0.05}}, 1)
    queue.enqueue(store, "orin", "jetson-orin-nano", [("dense", "onnxruntime")])
    yield store, path
    store.close()


def test_fronts_per_target_and_across_targets(two_targets):
    store, _ = two_targets
    assert (run_target(store, "cpu"), run_target(store, "orin")) == ("x86-cpu", "jetson-orin-nano")
    assert latest_run(store) == "orin"
    t = front_table(store, ["cpu", "orin"], ["p50_ms:min", "top1:max"], 1)
    assert {k: v["front"] for k, v in t["targets"].items()} == {
        "jetson-orin-nano": ["orin:dense", "orin:mag"],  # int8 is slower than mag on the Orin and no more accurate
        "x86-cpu": ["cpu:dense", "cpu:int8", "cpu:mag"],
    }
    assert t["front"] == ["cpu:int8", "orin:dense", "orin:mag"]  # across targets, the Orin beats the CPU's fp32
    assert {r["point"]: r["target"] for r in t["points"]}["orin:int8"] == "jetson-orin-nano"
    # the constraints default to the first run's own [selection]; drops are against each run's dense model
    assert t["constraints"] == ["top1_drop <= 0.01", "worst_class_drop <= 0.03"]
    policies = {c["policy"]: c for c in t["policies"]}
    assert policies["constraint-first"]["point_id"] == "orin:mag"
    assert policies["accuracy-only"]["point_id"] == "cpu:int8" and t["fairness_changed_choice"]
    assert policies["constraint-first"]["binding_constraints"] == ["worst_class_drop <= 0.03"]
    pairs = {(c["a"], c["b"]): c["verdict"] for c in t["techniques"]}
    assert set(pairs) == {("magnitude/fp32", "none/fp32"), ("magnitude/fp32", "none/int8"), ("none/fp32", "none/int8")}


def invoke(path, *args):
    return CliRunner().invoke(app, ["pareto", *args, "--store", str(path)])


def test_cli_defaults_to_the_latest_run_and_takes_constraints_policies_and_weights(two_targets):
    _, path = two_targets
    result = invoke(path, "--json", "-c", "p50_ms<=1.6", "-c", "worst_group_recall>=0.5", "-p", "constraint-first")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {r["point"] for r in doc["points"]} == {"dense", "mag", "int8"}  # the latest run: orin
    assert doc["constraints"] == ["p50_ms <= 1.6", "worst_group_accuracy >= 0.5"]
    (only,) = doc["policies"]
    assert only["point_id"] is None and "no value for worst_group_accuracy" in only["reason"]  # never taken as 0
    doc = json.loads(invoke(path, "orin", "--json", "-c", "none", "-w", "top1=1", "-w", "p50_ms=0").stdout)
    utility = {c["policy"]: c for c in doc["policies"]}["weighted-utility"]
    assert doc["constraints"] == [] and utility["point_id"] == "dense" and utility["utility"] == pytest.approx(1.0)
    own = {c["policy"]: c for c in json.loads(invoke(path, "cpu", "--json").stdout)["policies"]}
    assert own["weighted-utility"]["point_id"] == "dense"  # the run's own weights: top-1 only
    table = invoke(path, "cpu", "orin", "-o", "p50_ms", "-o", "cev")  # other objectives: equal weights
    assert table.exit_code == 0, table.output
    for expected in ("Pareto front over p50_ms:min, cev:min", "constraint-first:", "knee:", "front on x86-cpu:",
                     "techniques on x86-cpu: magnitude/fp32 vs none/fp32"):
        assert expected in table.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["-c", "p99_ms<5"], "constraint 'p99_ms<5': expected METRIC<=NUMBER"),
        (["-c", "latncy_ms<=5"], "unknown metric in constraint 'latncy_ms<=5'"),
        (["-o", "speed:max"], "unknown objective metric 'speed'"),
        (["-p", "fastest"], "unknown policy 'fastest'"),
        (["-w", "top1"], "weight 'top1': expected METRIC=NUMBER"),
        (["-w", "cev=1"], "weight on 'cev', which is not an objective"),
        (["nope"], "no run 'nope'"),
    ],
)
def test_cli_parsing_errors_exit_2_naming_the_culprit(two_targets, monkeypatch, capsys, args, message):
    _, path = two_targets
    monkeypatch.setattr(sys, "argv", ["harness", "pareto", *args, "--store", str(path)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())
