"""`harness results` list / show / export / compare over a store written by real runs."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import tiny_experiment

TINY = tiny_experiment(
    "tiny-results",
    sections='[[quantize]]\napply_to = ["dense"]',
    measure='batch_sizes = [1]\nmin_duration_s = 0.1\nisolation = "inline"',
)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    experiment = root / "tiny.toml"
    experiment.write_text(TINY)
    ids = []
    for _ in range(2):
        result = CliRunner().invoke(app, ["run", str(experiment), "--json", "--results-dir", str(root)])
        assert result.exit_code == 0, result.output[-2000:]
        ids.append(json.loads(result.stdout)["run_id"])
    return root / "harness.db", ids


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output[-2000:]
    return result.stdout


def test_list_shows_both_runs_finished(two_runs):
    store, ids = two_runs
    rows = json.loads(invoke("results", "list", "--store", str(store), "--json"))
    assert [r["run_id"] for r in rows] == ids
    assert all(r["status"] == "ok" and r["n_points"] == 2 and r["n_failed"] == 0 for r in rows)
    assert ids[0] in invoke("results", "list", "--store", str(store))


def test_show_gives_the_selection_and_every_point(two_runs):
    store, ids = two_runs
    doc = json.loads(invoke("results", "show", ids[0], "--store", str(store), "--json"))
    assert doc["selection"]["reason"] and len(doc["points"]) == 2
    int8 = next(p for p in doc["points"] if p["precision"] == "int8")
    assert int8["cie_fraction"] is not None and int8["ece"] is not None and "cev" in int8  # bias metrics per point
    assert "chosen:" in invoke("results", "show", ids[0], "--store", str(store))


def test_csv_export_has_points_per_class_and_per_sample_tables(two_runs, tmp_path):
    store, ids = two_runs
    paths = invoke("results", "export", ids[0], "--format", "csv", "--out", str(tmp_path), "--store", str(store)).split()
    assert [p.rsplit("-", 1)[1] for p in paths] == ["points.csv", "per_class.csv", "per_sample.csv"]
    with open(paths[0]) as f:
        points = list(csv.DictReader(f))
    with open(paths[1]) as f:
        per_class = list(csv.DictReader(f))
    with open(paths[2]) as f:
        per_sample = list(csv.DictReader(f))
    assert len(points) == 2 and {"point_id", "p50_ms", "top1", "worst_class_recall"} <= points[0].keys()
    assert len(per_class) == 2 * 10  # two evaluations (dense, dense+int8) x 10 classes
    n_eval = int(json.loads(invoke("results", "show", ids[0], "--store", str(store), "--json"))["points"][0]["n_samples"] or 0)
    assert n_eval > 0
    top1 = {p["variant_name"]: float(p["top1"]) for p in points}
    for variant, rows in (("dense", [r for r in per_sample if r["variant_name"] == "dense"]),):
        assert sum(r["correct"] == "True" for r in rows) / len(rows) == pytest.approx(top1[variant])


def test_json_and_parquet_exports_hold_the_same_points(two_runs, tmp_path):
    import pyarrow.parquet as pq

    store, ids = two_runs
    (path,) = invoke("results", "export", ids[1], "--format", "json", "--out", str(tmp_path), "--store", str(store)).split()
    with open(path) as f:
        tables = json.load(f)
    assert set(tables) == {"points", "per_class", "per_sample"}
    paths = invoke("results", "export", ids[1], "--format", "parquet", "--out", str(tmp_path), "--store", str(store)).split()
    points = pq.read_table(paths[0]).to_pylist()
    assert [p["point_id"] for p in points] == [p["point_id"] for p in tables["points"]]
    assert [p["p50_ms"] for p in points] == [p["p50_ms"] for p in tables["points"]]


def test_parquet_without_pyarrow_is_a_missing_dependency(two_runs, tmp_path, monkeypatch):
    import sys

    from harness.errors import MissingDependency

    store, ids = two_runs
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` raise ImportError
    result = CliRunner().invoke(app, ["results", "export", ids[1], "--format", "parquet", "--out", str(tmp_path), "--store", str(store)])
    assert isinstance(result.exception, MissingDependency)
    assert result.exception.exit_code == 3 and "pip install 'harness[parquet]'" in str(result.exception)


def test_compare_matches_points_of_two_runs(two_runs):
    store, ids = two_runs
    rows = json.loads(invoke("results", "compare", ids[0], ids[1], "--store", str(store), "--json"))
    assert {(r["variant_name"], r["batch_size"]) for r in rows} == {("dense", 1), ("dense+int8", 1)}
    for r in rows:
        assert r["top1_a"] == r["top1_b"]  # same cached artifacts, same evaluation split
        assert r["p50_ratio_b_over_a"] == pytest.approx(r["p50_ms_b"] / r["p50_ms_a"])


def test_unknown_run_and_missing_store_are_config_errors(two_runs, tmp_path):
    store, _ = two_runs
    result = CliRunner().invoke(app, ["results", "show", "nope", "--store", str(store)])
    assert result.exit_code != 0 and "no run 'nope'" in str(result.exception)
    result = CliRunner().invoke(app, ["results", "list", "--store", str(tmp_path / "none.db")])
    assert "no results store" in str(result.exception)


def test_pareto_from_the_store_matches_the_runs_own_front(two_runs):
    store, ids = two_runs
    front = json.loads(invoke("pareto", ids[0], "--store", str(store), "--json"))
    shown = json.loads(invoke("results", "show", ids[0], "--store", str(store), "--json"))
    assert set(front["front"]) == {p["point_id"] for p in shown["points"] if p["on_pareto_front"]}
    both = json.loads(invoke("pareto", *ids, "-o", "p50_ms:min", "-o", "top1:max", "--store", str(store), "--json"))
    assert {p["point"].split(":")[0] for p in both["points"]} == set(ids)  # points of both runs kept apart
    assert both["objectives"] == ["p50_ms:min", "top1:max"]


def test_the_run_stores_every_policy_and_the_knee_and_pareto_reproduces_its_decision(two_runs):
    store, ids = two_runs
    selection = json.loads(invoke("results", "show", ids[0], "--store", str(store), "--json"))["selection"]
    assert [c["policy"] for c in selection["policies"]] == ["constraint-first", "weighted-utility", "accuracy-only"]
    assert selection["policies"][0]["point_id"] == selection["point_id"]
    assert selection["knee_reason"]  # two points: "no knee", with the reason
    front = json.loads(invoke("pareto", ids[0], "--store", str(store), "--json"))
    assert [c["point_id"] for c in front["policies"]] == [c["point_id"] for c in selection["policies"]]


def test_card_rerendered_from_the_store_is_the_card_the_run_wrote(two_runs):
    from pathlib import Path

    store, ids = two_runs
    shown = json.loads(invoke("results", "show", ids[0], "--store", str(store), "--json"))
    written = Path(json.loads(invoke("results", "list", "--store", str(store), "--json"))[0]["run_id"]).name
    assert written == ids[0]
    from harness.store import open_store

    st = open_store(store)
    card_path = st.run_row(ids[0])["card_path"]
    st.close()
    assert invoke("card", ids[0], "--store", str(store)) == Path(card_path).read_text()
    other = next(p["point_id"] for p in shown["points"] if p["point_id"] != shown["selection"]["point_id"])
    assert f"**{other.split('@')[0]}**" in invoke("card", ids[0], "--point", other, "--store", str(store))
    doc = json.loads(invoke("card", ids[0], "--format", "json", "--store", str(store)))
    assert doc["record"]["run_id"] == ids[0] and len(doc["record"]["points"]) == 2


def test_card_formats_and_latest_run_default(two_runs):
    from pathlib import Path

    from harness.store import open_store

    store, ids = two_runs
    st = open_store(store)
    run_dir = Path(st.run_row(ids[1])["card_path"]).parent
    st.close()
    for name in ("card.md", "card.html", "card.json", "front.png", "front.svg", "latency.png", "latency.svg"):
        assert (run_dir / name).is_file(), name  # the pipeline wrote every rendering and figure
    assert invoke("card", "--store", str(store)) == (run_dir / "card.md").read_text()  # no RUN: the latest run
    html = invoke("card", ids[1], "--format", "html", "--store", str(store))
    assert html.startswith("<!DOCTYPE html>") and 'src="data:image/svg+xml;base64,' in html
    assert "http://" not in html and "https://" not in html
    result = CliRunner().invoke(app, ["card", ids[1], "--format", "pdf", "--store", str(store)])
    assert result.exit_code == 2 and "md, html, json" in result.output


def test_tables_print_every_metric_in_the_catalog_format(two_runs):
    from harness.metric_catalog import format_value

    store, ids = two_runs
    points = json.loads(invoke("results", "show", ids[0], "--store", str(store), "--json"))["points"]
    shown = CliRunner().invoke(app, ["results", "show", ids[0], "--store", str(store)], terminal_width=400).stdout
    rows = json.loads(invoke("results", "compare", *ids, "--store", str(store), "--json"))
    compared = CliRunner().invoke(app, ["results", "compare", *ids, "--store", str(store)], terminal_width=400).stdout
    for p in points:  # top-1 as a percentage, as in `harness run`'s table and the card, never a bare fraction
        assert format_value("top1", p["top1"]) in shown and format_value("p50_ms", p["p50_ms"]) in shown
        assert f" {p['top1']:.4g} " not in shown
    for r in rows:
        assert format_value("top1", r["top1_a"]) in compared


def test_compare_shows_p99_the_noise_band_energy_and_bias(two_runs):
    store, ids = two_runs
    rows = json.loads(invoke("results", "compare", ids[0], ids[1], "--store", str(store), "--json"))
    shown = {p["point_id"]: p for p in json.loads(invoke("results", "show", ids[0], "--store", str(store), "--json"))["points"]}
    for r in rows:
        for side in "ab":
            assert {f"p99_ms_{side}", f"p50_ci_ms_{side}", f"energy_per_inference_mj_{side}", f"worst_class_drop_{side}",
                    f"cie_fraction_{side}", f"cev_{side}"} <= r.keys()
            ci = r[f"p50_ci_ms_{side}"]
            assert ci is not None and ci[0] <= r[f"p50_ms_{side}"] <= ci[1]
            assert (r[f"energy_per_inference_mj_{side}"] is None) == bool(r[f"energy_unavailable_reason_{side}"])
        point = next(p for p in shown.values() if p["variant_name"] == r["variant_name"])
        assert r["cie_fraction_a"] == point["cie_fraction"] and r["worst_class_drop_a"] == point["worst_class_drop"]
    int8 = next(r for r in rows if r["variant_name"] == "dense+int8")
    assert int8["cie_fraction_a"] is not None
    table = CliRunner().invoke(app, ["results", "compare", *ids, "--store", str(store)], terminal_width=500).stdout
    for column in ("p99_ms_a", "p50_ci_ms_b", "energy_per_inference_mj_a", "worst_class_drop_b", "cie_fraction_a"):
        assert column in table
    if int8["energy_per_inference_mj_a"] is None:
        assert f"energy per inference: n/a ({int8['energy_unavailable_reason_a']})" in table


def test_export_samples_writes_every_warmup_and_timed_sample_per_point(two_runs, tmp_path):
    import pyarrow.parquet as pq

    from harness.store import open_store

    store, ids = two_runs
    st = open_store(store)
    points = st.operating_points(ids[0])
    st.close()
    (path,) = invoke("results", "export", ids[0], "--what", "samples", "--out", str(tmp_path), "--store", str(store)).split()
    assert path.endswith(f"{ids[0]}-latency_samples.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for p in points:
        mine = [r for r in rows if r["point_id"] == p.point_id]
        timed = [float(r["latency_ms"]) for r in mine if r["phase"] == "timed"]
        assert len(timed) == p.latency.n_samples and len([r for r in mine if r["phase"] == "warmup"]) == p.latency.n_warmup
        assert min(timed) == pytest.approx(p.latency.min_ms)
        assert [int(r["index"]) for r in mine if r["phase"] == "timed"] == list(range(len(timed)))
    (jpath,) = invoke("results", "export", ids[0], "--what", "samples", "-f", "json", "--out", str(tmp_path), "--store", str(store)).split()
    with open(jpath) as f:
        assert len(json.load(f)["latency_samples"]) == len(rows)
    (ppath,) = invoke("results", "export", ids[0], "--what", "samples", "-f", "parquet", "--out", str(tmp_path),
                      "--store", str(store)).split()
    assert pq.read_table(ppath).num_rows == len(rows)
    result = CliRunner().invoke(app, ["results", "export", ids[0], "--what", "nope", "--out", str(tmp_path), "--store", str(store)])
    assert "unknown export 'nope'" in str(result.exception)
