"""A population of seeds: bias metrics on every point, CIE audit lists, and the card section."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import tiny_experiment

TINY = tiny_experiment(
    "tiny-population",
    top="population = 3",
    dataset="long_tail = { classes = [3, 8], keep_fraction = 0.3 }",
    epochs=2,
    sections='[[prune]]\nmethod = "magnitude"\nsparsity = [0.9]\nfinetune_epochs = 0\n'
    "[selection]\nmax_top1_drop = 1.0\nmax_worst_class_drop = 1.0",
    measure='batch_sizes = [1]\nmin_duration_s = 0.1\nisolation = "inline"',
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("population")
    (root / "tiny.toml").write_text(TINY)
    result = CliRunner().invoke(app, ["run", str(root / "tiny.toml"), "--json", "--results-dir", str(root)])
    assert result.exit_code == 0, result.output[-3000:]
    return root, json.loads(result.stdout)


def test_every_point_gets_population_bias_metrics(run):
    _, doc = run
    assert doc["population"] == 3
    by_name = {p["variant_name"]: p for p in doc["points"]}
    assert set(by_name) == {"dense", "magnitude-0.9"}  # members are scored, not listed as points
    pruned = by_name["magnitude-0.9"]
    assert pruned["population_size"] == 3
    assert 0 < pruned["cie_fraction"] <= 1  # 90% sparsity without fine-tuning changes many labels
    assert pruned["cev"] is not None and pruned["cev"] > 0
    assert 0 <= pruned["ece"] <= 1
    assert 0 <= pruned["susceptibility_auroc"] <= 1
    assert set(pruned["per_class_delta_significant"]) == set("0123456789")


def test_members_are_stored_but_only_primaries_are_timed(run):
    from harness.store import open_store

    root, doc = run
    st = open_store(root / "harness.db")
    assert st.count("evaluations", doc["run_id"]) == 2 * 3  # 2 variants x 3 seeds
    assert st.count("operating_points", doc["run_id"]) == 2
    st.close()


def test_cie_audit_list_is_ranked_and_matches_the_fraction(run):
    root, doc = run
    pruned = next(p for p in doc["points"] if p["variant_name"] == "magnitude-0.9")
    path = Path(doc["run_dir"]) / "audit" / "cie-magnitude-0.9@onnxruntime.csv"
    with open(path) as f:
        rows = list(csv.DictReader(f))
    n_eval = doc["dataset"]["splits"]["evaluation"]
    assert len(rows) == round(pruned["cie_fraction"] * n_eval)
    scores = [float(r["taxicab_score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(r["dense_modal"] != r["compressed_modal"] for r in rows)


def test_card_reports_bias_metrics_with_their_source(run):
    _, doc = run
    card = Path(doc["card_path"]).read_text()
    assert "## Bias metrics" in card and "Hooker et al." in card and "Blakeney et al." in card
    assert "populations of 3 seeds" in card
    if doc["cie_gallery_path"]:
        assert Path(doc["cie_gallery_path"]).read_bytes()[:4] == b"\x89PNG"
