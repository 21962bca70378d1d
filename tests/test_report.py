"""The model card and the front plot, rendered from a RunReport built by hand."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from harness.records import (
    AccuracyStats,
    ArtifactInfo,
    DatasetInfo,
    EnergyStats,
    EnvironmentInfo,
    LatencyStats,
    MemoryStats,
    OperatingPoint,
    RunReport,
    Selection,
    SplitInfo,
)
from harness.report.card import render_model_card
from harness.report.plots import plot_front

CLASSES = ["airplane", "cat", "dog|wolf"]
SUPPORT = {"airplane": 40, "cat": 7, "dog|wolf": 30}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
P99_REASON = "only 50 timed queries; nearest-rank p99 needs at least 100"
ENERGY_REASON = "no RAPL or NVML on this machine"
SELECTION_REASON = "fastest point with top-1 >= 88.0% and worst-class recall >= 75.0%: prune-30 on onnxruntime"


def _accuracy(recall: dict[str, float]) -> AccuracyStats:
    worst = min(recall, key=recall.__getitem__)
    total = sum(SUPPORT.values())
    return AccuracyStats(
        n_samples=total,
        top1=sum(recall[c] * SUPPORT[c] for c in CLASSES) / total,
        per_class_recall=dict(recall),
        per_class_support=dict(SUPPORT),
        worst_class_recall=recall[worst],
        worst_class=worst,
    )


def _latency(p50: float, *, p99: float | None = None, p99_reason: str | None = None) -> LatencyStats:
    return LatencyStats(
        batch_size=1, n_samples=200, n_warmup=20, p50_ms=p50, p90_ms=p50 * 1.1,
        p99_ms=p50 * 1.3 if p99 is None and p99_reason is None else p99, mean_ms=p50 * 1.02,
        std_ms=p50 * 0.05, min_ms=p50 * 0.9, max_ms=p50 * 1.5, duration_s=1.0,
        throughput_sps=1000 / p50, p99_unavailable_reason=p99_reason, threads=4,
    )


def _artifact(name: str, sparsity: float, precision: str) -> ArtifactInfo:
    return ArtifactInfo(
        path=f"results/cache/{name}.onnx", format="onnx", file_mb=1.5, n_weights=100_000,
        weight_sparsity=sparsity, layer_sparsity={}, n_quantized_nodes=24 if precision == "int8" else 0,
        precision=precision, sha256="0" * 64,
    )


def _point(pid: str, variant_id: str, name: str, runtime: str, recall: dict[str, float] | None, p50: float | None,
           *, sparsity: float = 0.0, precision: str = "fp32", front: bool = False, **extra) -> OperatingPoint:
    return OperatingPoint(
        point_id=pid, variant_id=variant_id, variant_name=name, runtime=runtime, batch_size=1,
        prune_method="none" if sparsity == 0 else "magnitude", prune_amount=sparsity, precision=precision,
        status=extra.pop("status", "ok"), artifact=_artifact(name, sparsity, precision),
        accuracy=_accuracy(recall) if recall else None,
        latency=extra.pop("latency", _latency(p50) if p50 is not None else None),
        memory=MemoryStats(artifact_mb=1.5, peak_rss_mb=None, peak_rss_unavailable_reason="psutil missing"),
        energy=EnergyStats(None, None, None, unavailable_reason=ENERGY_REASON), on_pareto_front=front, **extra,
    )


@pytest.fixture
def report() -> RunReport:
    dense = {"airplane": 0.95, "cat": 0.85, "dog|wolf": 0.90}
    points = [
        _point("p-dense-ort", "v-dense", "dense", "onnxruntime", dense, 2.0),
        # the same dense artifact reads a little differently through torch: a wrong baseline shows up
        _point("p-dense-torch", "v-dense", "dense", "torch", {"airplane": 0.95, "cat": 0.70, "dog|wolf": 0.90}, 5.0),
        _point("p-prune50-ort", "v-p50", "prune-50-int8", "onnxruntime",
               {"airplane": 0.975, "cat": 0.60, "dog|wolf": 0.9333}, 0.5, sparsity=0.5, precision="int8", front=True),
        _point("p-prune30-ort", "v-p30", "prune-30", "onnxruntime", {"airplane": 0.975, "cat": 0.80, "dog|wolf": 0.90},
               None, sparsity=0.3, front=True, latency=_latency(1.0, p99_reason=P99_REASON)),
        _point("p-prune70-torch", "v-p70", "prune-70", "torch", None, None, sparsity=0.7, status="failed",
               error="RuntimeError: export failed for Conv_3\nTraceback (most recent call last):\n  File x.py"),
    ]
    selection = Selection(
        point_id="p-prune30-ort", reason=SELECTION_REASON, accuracy_only_point_id="p-prune50-ort",
        accuracy_only_reason="fastest point with top-1 >= 88.0%, worst class ignored: prune-50-int8",
        fairness_changed_choice=True, batch_size=1,
        constraints={"max_top1_drop": 0.02, "max_worst_class_drop": 0.1},
    )
    dataset = DatasetInfo(
        name="toy", class_names=CLASSES, input_shape=[1, 8, 8],
        splits=[
            SplitInfo("train", 112, {"airplane": 50, "cat": 12, "dog|wolf": 50}),
            SplitInfo("evaluation", 77, dict(SUPPORT)),
        ],
        under_represented=["cat"], preprocessing={"scale": "pixel / 16"}, description="a toy dataset",
    )
    environment = EnvironmentInfo(
        cpu_model="Test CPU", physical_cores=4, logical_cores=8, cpu_flags=["avx2"], os="Linux", python="3.11.7",
        library_versions={"onnxruntime": "1.18.0", "torch": None}, git_commit=None,
        git_commit_unavailable_reason="not a git checkout", hostname="box",
    )
    return RunReport(
        run_id="run-1", experiment_name="toy-exp", started_at="2025-01-01T00:00:00Z",
        finished_at="2025-01-01T00:05:00Z", status="partial", dataset=dataset, model_name="tiny-cnn",
        baseline_variant_id="v-dense", points=points, objectives=["p50_ms:min", "top1:max", "worst_class_recall:max"],
        selection=selection, environment=environment, run_dir="results/runs/run-1", card_path=None, plot_path=None,
        store="sqlite", n_failed=1, notes=["digits is a small dataset; treat differences below 1 pp as noise"],
    )


def _table_cells(line: str) -> list[str]:
    """Cells of one Markdown table row, splitting on unescaped pipes only."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _row(card: str, first_cell: str) -> list[str]:
    table = [_table_cells(line) for line in card.splitlines() if line.startswith("|")]
    rows = [cells for cells in table if cells[0] == first_cell]
    assert len(rows) >= 1, f"no table row starts with {first_cell!r}"
    return rows[0]


def _per_class_rows(card: str) -> dict[str, list[str]]:
    section = card.split("## Per-class recall")[1].split("\n## ")[0]
    rows = [_table_cells(line) for line in section.splitlines() if line.startswith("|")]
    header, body = rows[0], rows[2:]
    return {cells[0]: dict(zip(header, cells, strict=True)) for cells in body}


def test_card_names_under_represented_classes_with_training_counts(report: RunReport) -> None:
    card = render_model_card(report)
    line = next(line for line in card.splitlines() if "Under-represented classes" in line)
    assert "cat" in line
    assert "12 training" in line


def test_card_quotes_selection_and_accuracy_only_reasons_verbatim(report: RunReport) -> None:
    card = render_model_card(report)
    assert report.selection.reason in card
    assert report.selection.accuracy_only_reason in card
    assert "Fairness changed the choice" in card


def test_missing_p99_renders_na_with_its_reason_never_zero(report: RunReport) -> None:
    card = render_model_card(report)
    p99 = _row(card, "p99")
    assert p99[1].startswith("n/a")
    assert P99_REASON in p99[1]
    assert not re.search(r"\b0(\.0+)?\b", p99[1])


def test_unmeasured_energy_renders_not_measured_with_reason(report: RunReport) -> None:
    card = render_model_card(report)
    assert f"not measured: {ENERGY_REASON}" in card
    caveats = card.split("## Caveats")[1]
    assert ENERGY_REASON in caveats


def test_per_class_delta_is_chosen_minus_same_runtime_dense_baseline(report: RunReport) -> None:
    rows = _per_class_rows(render_model_card(report))
    # chosen (prune-30, onnxruntime) vs dense on onnxruntime, not the torch dense point
    assert rows["cat"]["dense recall"] == "85.0%"
    assert rows["cat"]["chosen recall"] == "80.0%"
    assert rows["cat"]["delta"] == "-5.0 pp"
    assert rows["airplane"]["delta"] == "+2.5 pp"
    assert rows["dog\\|wolf"]["delta"] == "+0.0 pp"


def test_per_class_table_marks_under_represented_and_worst_class(report: RunReport) -> None:
    rows = _per_class_rows(render_model_card(report))
    assert "under-represented" in rows["cat"]["marks"]
    assert "worst" in rows["cat"]["marks"]
    assert rows["airplane"]["marks"] == ""


def test_per_class_recall_without_support_renders_no_support(report: RunReport) -> None:
    chosen = report.points[3]
    recall = dict(chosen.accuracy.per_class_recall, airplane=None)
    points = list(report.points)
    points[3] = dataclasses.replace(chosen, accuracy=dataclasses.replace(chosen.accuracy, per_class_recall=recall))
    rows = _per_class_rows(render_model_card(dataclasses.replace(report, points=points)))
    assert rows["airplane"]["chosen recall"] == "n/a (no support)"
    assert rows["airplane"]["delta"] == "n/a"


def test_failed_point_shows_first_line_of_its_error(report: RunReport) -> None:
    card = render_model_card(report)
    row = _row(card, "prune-70")
    assert row[-1] == "failed: RuntimeError: export failed for Conv_3"
    assert "Traceback" not in card


def test_pipe_in_class_name_is_escaped_and_every_table_row_keeps_its_columns(report: RunReport) -> None:
    card = render_model_card(report)
    assert "dog\\|wolf" in card
    table_lines = [line for line in card.splitlines() if line.startswith("|")]
    assert not any("dog|wolf" in line for line in table_lines)
    widths: list[int] = []
    lines = card.splitlines()
    for line, previous in zip(lines, ["", *lines[:-1]], strict=True):
        if not line.startswith("|"):
            continue
        if not previous.startswith("|"):
            widths.append(len(_table_cells(line)))  # header starts a new table
        assert len(_table_cells(line)) == widths[-1], line


def test_card_caveats_give_smallest_support_and_run_notes(report: RunReport) -> None:
    caveats = render_model_card(report).split("## Caveats")[1]
    assert "7 images" in caveats and "cat" in caveats
    assert f"- {report.notes[0]}" in caveats


def test_plot_front_writes_png(report: RunReport, tmp_path: Path) -> None:
    out = plot_front(report, tmp_path / "plots" / "front.png")
    assert out == tmp_path / "plots" / "front.png"
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def test_plot_front_skips_points_without_latency(report: RunReport, tmp_path: Path) -> None:
    points = [dataclasses.replace(p, latency=None) if p.runtime == "torch" else p for p in report.points]
    out = plot_front(dataclasses.replace(report, points=points), tmp_path / "front.png")
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_plot_front_with_no_plottable_point_still_writes_png(report: RunReport, tmp_path: Path) -> None:
    out = plot_front(report, tmp_path / "front.png", batch_size=64)
    assert out.read_bytes().startswith(PNG_SIGNATURE)
