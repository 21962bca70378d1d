"""The card's three renderings: escaping of hostile names, offline HTML, YAML front matter, n/a, figures."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser

import pytest

from harness.records import EnergyStats
from harness.report.card import build_card, render_card
from harness.report.document import Code, Document, Paragraph, Section, Table, md_escape, render_markdown
from harness.report.figures import LATENCY, POWER, PowerTrace, figure_plan, write_figures
from harness.report.frontmatter import card_metadata, to_yaml
from tests.card_report import ENERGY_REASON, FAKE_IMAGES, FAKE_LATENCY_SAMPLES, HOSTILE, card_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _table_cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def _parse(html_text: str) -> _Collect:
    parser = _Collect()
    parser.feed(html_text)
    return parser


@pytest.fixture
def hostile_html() -> str:
    report = card_report(hostile=True)
    return render_card(report, "html", figures=figure_plan(report), images=FAKE_IMAGES)


def test_hostile_names_are_text_in_html_never_markup(hostile_html: str) -> None:
    parsed = _parse(hostile_html)
    assert "script" not in parsed.tags
    assert set(parsed.tags) <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "p", "nav",
                                        "a", "main", "section", "h2", "table", "caption", "thead", "tr", "th",
                                        "tbody", "td", "strong", "code", "ul", "li", "figure", "img", "figcaption"}
    assert not any(name.startswith("on") for name, _ in parsed.attrs)  # no event handler survived
    text = "".join(parsed.text)
    for name in (HOSTILE["class"], HOSTILE["attr"], HOSTILE["level"], HOSTILE["pipe"]):
        assert name in text  # shown to the reader as the literal string
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile_html


def test_html_is_self_contained_and_offline(hostile_html: str) -> None:
    parsed = _parse(hostile_html)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "iframe" not in parsed.tags
    for name, value in parsed.attrs:
        if name in ("src", "href"):
            assert value.startswith(("data:", "#")), f"{name}={value[:60]}"
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", hostile_html, re.I)
    assert not re.search(r"url\(\s*[\"']?(https?:)?//", hostile_html, re.I)
    assert "@import" not in hostile_html


def test_hostile_names_keep_every_markdown_table_row_whole() -> None:
    card = render_card(card_report(hostile=True), "md")
    body = card.split("\n---\n", 1)[1]
    assert not re.search(r"(?<!\\)<(script|b|i|img)\b", body)  # every "<" of a name is backslash-escaped
    widths: list[int] = []
    lines = body.splitlines()
    for line, previous in zip(lines, ["", *lines[:-1]], strict=True):
        if line.startswith("|"):
            if not previous.startswith("|"):
                widths.append(len(_table_cells(line)))
            assert len(_table_cells(line)) == widths[-1], line
    row = next(_table_cells(line) for line in lines if line.startswith("| a\\|b |"))
    assert row[1] == "30"  # the pipe in "a|b" did not open a column


def test_front_matter_is_yaml_that_round_trips_hostile_strings() -> None:
    yaml = pytest.importorskip("yaml", reason="pyyaml is not installed (not a dependency; install it to run this)")
    report = card_report(hostile=True)
    card = render_card(report, "md")
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta == card_metadata(report, report.points[1])
    assert meta["model-index"][0]["name"] == f"{HOSTILE['experiment']}/prune-50"
    metrics = meta["model-index"][0]["results"][0]["metrics"]
    assert {"type": "accuracy", "value": round(report.points[1].accuracy.top1, 4), "name": "Top-1 accuracy"} in metrics


def test_yaml_emitter_quotes_everything_a_parser_could_misread() -> None:
    text = to_yaml({"a": ["yes", "no", "null", "1e3", "- x", "#c", "k: v", "\x07\u2028\ud800", 'q"\\'], "on": {}})
    assert text.splitlines()[0] == "a:"
    assert '- "yes"' in text and '- "1e3"' in text and r'"\x07\u2028\ud800"' in text and r'"q\"\\"' in text
    assert '"on": {}' in text  # a YAML 1.1 boolean word as a key is quoted too


def test_metadata_leaves_unmeasured_metrics_out_never_zero() -> None:
    report = card_report()
    meta = card_metadata(report, report.points[0])
    types = [m["type"] for m in meta["model-index"][0]["results"][0]["metrics"]]
    assert "energy" not in " ".join(types)  # energy was not measured for the dense point
    assert card_metadata(report, None).get("model-index") is None


def test_unmeasured_energy_is_na_with_reason_and_measured_energy_gives_scope() -> None:
    report = card_report()
    card = render_card(report, "md")
    assert "3.250 mJ per inference gross, dynamic n/a (no reason recorded) (scope: cpu-package, source: rapl-counter)" \
        in card
    dense = dataclasses.replace(report, selection=dataclasses.replace(report.selection, point_id=report.points[0].point_id))
    card = render_card(dense, "md")
    assert f"not measured: {ENERGY_REASON}" in card
    assert not re.search(r"Energy\*\*: 0", card)


def test_a_tensorrt_point_shows_its_engine_next_to_its_latency_and_others_say_why_not() -> None:
    from harness.records import EngineInfo

    report = card_report()
    engine = EngineInfo(trt_version="10.3.0", device="Orin", cache_key="k" * 24, cache_hit=True,
                        source_format="onnx-trt-qdq", network_flags=["STRONGLY_TYPED"],
                        builder_flags=["SPARSE_WEIGHTS"], engine_mb=1.5, n_layers=12, n_int8_layers=9,
                        n_fp16_layers=0, n_sparse_layers=4, n_sparse_eligible=6)
    chosen = report.points[1]
    points = [dataclasses.replace(p, runtime="tensorrt", engine=engine) if p is chosen else p for p in report.points]
    card = render_card(dataclasses.replace(report, points=points), "md")
    assert ("TensorRT 10.3.0 on Orin, built from the onnx-trt-qdq file; 12 layers: 9 int8, 0 fp16, "
            "4 on sparse kernels of 6 eligible for sparse math; flags STRONGLY_TYPED, SPARSE_WEIGHTS") in card
    assert "device profile jetson-orin-nano" in card
    assert "engines exist for the tensorrt runtime only" in render_card(report, "md")


def test_policies_knee_and_binding_constraint_are_rendered() -> None:
    card = render_card(card_report(), "md")
    rows = {cells[0]: cells for cells in map(_table_cells, card.splitlines()) if cells and cells[0] in
            ("constraint-first", "weighted-utility", "accuracy-only")}
    assert rows["constraint-first"][2] == "max_worst_class_drop"
    assert rows["weighted-utility"][3] == "0.734" and rows["accuracy-only"][3] == "n/a"
    assert "Knee of the latency / top-1 front: **prune-50**" in card
    assert "**Fairness changed the choice.**" in card


def test_json_card_holds_metadata_sections_and_the_record() -> None:
    report = card_report()
    doc = json.loads(render_card(report, "json"))
    assert doc["card_schema_version"] == 1 and doc["record"]["run_id"] == report.run_id
    titles = [s["title"] for s in doc["sections"]]
    for needed in ("Model details", "Intended use and out-of-scope uses", "Factors", "Metrics and why they were chosen",
                   "Evaluation and calibration data", "Quantitative analysis", "Bias metrics", "Deployment",
                   "Pareto position and the reason for the choice", "Caveats and ethical considerations"):
        assert needed in titles
    figures = [b for s in doc["sections"] for b in s["blocks"] if b["type"] == "figure"]
    assert {f["key"] for f in figures} == {"front", "recall_delta", "latency", "power", "cie_gallery"}


def test_one_document_gives_the_same_content_in_markdown_and_html() -> None:
    doc = build_card(card_report())
    md = render_card(card_report(), "md")
    html_text = render_card(card_report(), "html")
    for section in doc.sections:
        assert f"## {md_escape(section.title)}" in md and f"<h2>{section.title}</h2>" in html_text


def test_code_spans_survive_backticks_and_pipes() -> None:
    doc = Document("t", [Section("s", [Table(["k"], [[Code("a`b|c")]]), Paragraph([Code("``")])])])
    md = render_markdown(doc)
    assert "| `` a`b\\|c `` |" in md and "``` `` ```" in md


def test_figure_plan_says_why_each_missing_figure_is_missing() -> None:
    report = card_report()
    plan = figure_plan(report)
    assert plan[LATENCY].missing == "no raw latency samples are stored for this run"
    assert "cumulative energy counter" in plan[POWER].missing  # the chosen point's meter is rapl-counter
    chosen = report.points[1]
    unmeasured = dataclasses.replace(report, points=[
        dataclasses.replace(p, energy=EnergyStats(None, None, None, unavailable_reason="no meter")) if p is chosen else p
        for p in report.points])
    assert figure_plan(unmeasured)[POWER].missing == "no meter measured energy (no meter)"
    assert figure_plan(report, latency_samples=FAKE_LATENCY_SAMPLES)[LATENCY].files == ("latency.svg", "latency.png")
    md = render_card(report, "md")
    assert "**Latency distribution per operating point:** not plotted: no raw latency samples" in md


def test_write_figures_draws_png_and_svg_of_every_planned_figure(tmp_path) -> None:
    report = card_report()
    trace = PowerTrace(report.selection.point_id, [0.0, 0.5, 1.0, 1.5, 2.0], {"package": [5.0, 9.0, 9.5, 9.0, 5.0]},
                       (0.4, 1.6), "rapl-sampled")
    plan = figure_plan(report, latency_samples=FAKE_LATENCY_SAMPLES, power_traces=[trace])
    images = write_figures(report, tmp_path, plan, latency_samples=FAKE_LATENCY_SAMPLES, power_traces=[trace])
    for stem in ("front", "recall_delta", "latency", "power"):
        assert images[f"{stem}.png"].startswith(PNG_SIGNATURE)
        assert b"<svg" in images[f"{stem}.svg"][:2000]
        assert b"<dc:date>" not in images[f"{stem}.svg"]  # byte-stable across reruns
    assert "cie_gallery.png" not in images  # the recorded gallery file does not exist here
    html_text = render_card(report, "html", figures=plan, images=images)
    assert html_text.count('src="data:image/svg+xml;base64,') == 4
    assert "CIE audit gallery:</strong> not plotted" in html_text


def test_a_power_trace_kept_on_the_chosen_points_energy_record_is_plotted_without_being_passed(tmp_path) -> None:
    report = card_report()
    chosen = report.points[1]
    energy = dataclasses.replace(chosen.energy, meter="jetson", window_s=2.0, power_trace_t_s=[0.0, 0.5, 1.0, 1.5, 2.0],
                                 power_trace_w=[5.0, 9.0, 9.5, 9.0, 5.0])
    traced = dataclasses.replace(report, points=[dataclasses.replace(p, energy=energy) if p is chosen else p
                                                 for p in report.points])
    plan = figure_plan(traced)
    assert plan[POWER].files == ("power.svg", "power.png") and "from jetson" in plan[POWER].caption
    images = write_figures(traced, tmp_path, plan)
    assert images["power.png"].startswith(PNG_SIGNATURE)


def test_device_state_and_memory_stack_of_the_chosen_point_are_stated_with_their_scope() -> None:
    from harness.records import DeviceState, MemoryStats

    report = card_report()
    chosen = report.points[1]
    state = DeviceState(cpu_governors={"cpu0": "performance"}, cpu_freq_mhz={}, cpu_freq_after_mhz={},
                        cpu_max_freq_mhz={}, temperatures_c={"soc": 51.0}, temperatures_after_c={"soc": 58.0},
                        gpu={}, gpu_after={}, warnings=["power mode 15W is not the profile default MAXN"],
                        power_mode="15W", expected_power_mode="MAXN", jetson_clocks_active=False, throttled=True,
                        throttle_reasons=["thermal@end"], clocks_locked=True,
                        clock_lock={"method": "jetson_clocks", "gpu_clock_mhz": None, "restored": True})
    memory = MemoryStats(artifact_mb=2.0, peak_rss_mb=300.0, weights_mb=1.9, sparse_weights_mb=1.1,
                         sparse_weights_format="bitmask+values", system_memory_delta_mb=412.0)
    points = [dataclasses.replace(p, device_state=state, memory=memory) if p is chosen else p for p in report.points]
    card = render_card(dataclasses.replace(report, points=points), "md")
    assert "power mode 15W (profile default MAXN); jetson_clocks not active; THROTTLED (thermal@end)" in card
    assert "clocks locked by jetson_clocks" in card and "hottest zone soc 51 C before, 58 C after" in card
    assert "Warnings: power mode 15W is not the profile default MAXN." in card
    assert "unified-memory delta 412.00 MB" in card
    assert "weights stored sparse (bitmask+values) would take 1.10 MB (computed, not a shipped file)" in card


def test_model_details_state_how_the_chosen_variant_was_made_and_older_reports_keep_the_short_form() -> None:
    report = card_report()
    recipe = "magnitude pruning to 50% sparsity (global, one-shot); BatchNorm statistics re-estimated after pruning"
    points = [dataclasses.replace(p, recipe=recipe) if p.point_id == report.selection.point_id else p for p in report.points]
    with_recipe = render_card(dataclasses.replace(report, points=points), "md")
    assert f"| compression | {recipe} |" in with_recipe
    chosen = next(p for p in report.points if p.point_id == report.selection.point_id)
    assert chosen.recipe is None  # a stored report without recipe words
    assert f"| compression | {chosen.prune_method} pruning ({chosen.prune_amount:g}), {chosen.precision} |" in render_card(report, "md")
