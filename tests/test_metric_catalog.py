"""The metric catalog is the one table: flat metrics, summaries, the grammar and docs/selection.md follow it."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import pytest

from harness.errors import ParseError
from harness.metric_catalog import (
    BY_NAME,
    FAIRNESS_METRICS,
    METRIC_ALIASES,
    METRICS,
    UNITS,
    format_value,
    markdown_table,
    metric,
    parse_constraint,
    parse_objective,
)
from harness.records import flat_metrics
from harness.report.summary import point_summary
from tests.card_report import card_report

ROOT = Path(__file__).resolve().parents[1]


def test_every_row_is_well_formed_and_names_are_unique():
    assert len(BY_NAME) == len(METRICS)
    for row in METRICS:
        assert row.unit in UNITS and row.direction in ("min", "max") and row.description and row.source
        assert row.fraction == (row.unit in ("fraction", "fraction difference"))
        assert row.name not in METRIC_ALIASES
    assert all(target in BY_NAME for target in METRIC_ALIASES.values())


def test_the_fairness_metrics_are_those_about_who_the_model_fails():
    assert FAIRNESS_METRICS == {
        "worst_class_recall", "worst_class_drop", "max_class_drop", "worst_group_accuracy", "cev", "sde",
        "cie_fraction", "ece", "n_classes_hurt", "bias_amp_delta",
    }
    assert not metric("calibrated_top1").fairness and metric("calibrated_top1").fraction
    assert metric("worst_group_recall") is BY_NAME["worst_group_accuracy"]


def test_flat_metrics_are_the_catalog_read_from_a_point():
    report = card_report()
    for point in report.points:
        flat = flat_metrics(point)
        assert list(flat) == [m.name for m in METRICS]
        assert flat == {m.name: m.read(point) for m in METRICS}


def test_every_catalog_metric_reads_a_value_from_a_fully_measured_point():
    point = next(p for p in card_report().points if p.variant_name != "dense" and p.bias is not None)
    flat = flat_metrics(point)
    missing = {m for m, v in flat.items() if v is None}
    # the card's fixture has no binary target (no threshold calibration), 4 classes (no top-5), no meter
    assert missing <= {"calibrated_top1", "top5", "energy_per_inference_mj"}, missing
    acc = point.accuracy
    assert flat["top1_drop"] == -acc.top1_delta and flat["bias_amp_delta"] == point.bias.bias_amp_a_to_t_delta
    assert flat["max_class_drop"] == max(-d for d in acc.per_class_delta.values() if d is not None)


def test_the_run_summary_and_exports_carry_every_catalog_metric_with_the_same_value():
    for point in card_report().points:
        summary = point_summary(point)
        for name, value in flat_metrics(point).items():
            assert name in summary
            assert summary[name] == value or (isinstance(value, float) and math.isnan(value))


def test_the_grammar_parses_against_the_catalog_and_suggests_the_closest_name():
    for row in METRICS:
        assert parse_objective(row.name).direction == row.direction
        assert parse_constraint(f"{row.name}<=1").metric == row.name
    with pytest.raises(ParseError, match=r"unknown objective metric 'top_1' \(did you mean 'top1'\?\)"):
        parse_objective("top_1:max")
    with pytest.raises(ParseError, match=r"unknown metric in constraint 'bias_amp<=0': 'bias_amp' "
                                         r"\(did you mean 'bias_amp_delta'\?\)"):
        parse_constraint("bias_amp<=0")


def test_values_print_in_their_unit():
    assert format_value("p99_ms", 1.23456) == "1.235 ms"
    assert format_value("top1_drop", 0.012) == "1.2 pp"
    assert format_value("bias_amp_delta", 0.2) == "20.0 pp"
    assert format_value("top1", 0.9) == "90.0%"
    assert format_value("cev", 12.345) == "12.35"
    assert format_value("n_classes_hurt", None) == "n/a"


def test_docs_selection_shows_the_catalog_table():
    text = (ROOT / "docs" / "selection.md").read_text()
    assert text.count(markdown_table()) == 1, "paste metric_catalog.markdown_table() into docs/selection.md"


def test_the_catalog_imports_only_the_standard_library_and_the_errors_module():
    tree = ast.parse((ROOT / "harness" / "metric_catalog.py").read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    outside = {n for n in names if n.split(".")[0] not in sys.stdlib_module_names and n != "harness.errors"}
    assert outside == set()


def test_the_card_s_metric_glossary_names_catalog_metrics_and_drops_show_in_points():
    from harness.metric_catalog import metric_of_key
    from harness.report.card import _METRICS, _in_points

    named = [name for name, _, _ in _METRICS if name.isidentifier()]
    assert named and all(name in BY_NAME for name in named)
    assert metric_of_key("max_top1_drop") is BY_NAME["top1_drop"] and metric_of_key("max_class_drop").name == "max_class_drop"
    assert metric_of_key("min_worst_group_accuracy") is BY_NAME["worst_group_accuracy"] and metric_of_key("max_x") is None
    assert [_in_points(k) for k in ("max_top1_drop", "max_worst_class_drop", "max_bias_amp_delta", "max_p99_ms",
                                    "min_worst_group_accuracy")] == [True, True, True, False, False]
