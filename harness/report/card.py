"""The model card: what the chosen operating point costs, and whom it hurts.

One card model, three renderings. :func:`build_card` turns a
:class:`~harness.records.RunReport` into a :class:`~harness.report.document.Document`
(sections of paragraphs, tables and figures); :func:`render_card` renders it as Markdown
(with Hugging Face YAML front matter), self-contained HTML, or JSON. All of it is pure:
no I/O, no clock, no environment lookups; figures arrive as a plan
(:func:`harness.report.figures.figure_plan`) and, for HTML, as bytes. Every number
comes from the report; a value that was not measured prints ``n/a`` with the reason
recorded beside it, never 0.

Adding a field to the card: put it on the record (``harness/records.py``), then add a
row, item or paragraph to the section builder that owns the topic (here or in
:mod:`harness.report.card_analysis`); all three renderings and the front matter follow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from harness.metric_catalog import metric_of_key
from harness.records import OperatingPoint, RunReport, to_dict
from harness.report import _format as f
from harness.report.card_analysis import bias_section, deployment_section, energy_text, quantitative_sections
from harness.report.document import (
    BulletList,
    Code,
    Document,
    Figure,
    Paragraph,
    Section,
    Strong,
    Table,
    Text,
    document_dict,
    render_html,
    render_markdown,
)
from harness.report.figures import FRONT, figure_plan
from harness.report.frontmatter import card_metadata, front_matter

CARD_FORMATS = ("md", "html", "json")
CARD_SCHEMA_VERSION = 1

_METRICS = [
    ("top1", "top-1 accuracy", "the headline number; it hides who pays for compression, so it is never used alone"),
    ("per-class recall", "recall of every class against the dense model, with bootstrap 95% intervals",
     "compression hurts some classes far more than top-1 moves (Hooker et al. 2020); recall per class shows which"),
    ("worst_class_recall", "the lowest per-class recall", "a selection constraint: the class served worst must not "
     "fall more than the declared budget"),
    ("worst_group_accuracy", "the lowest accuracy over the declared group attributes",
     "the same question for groups that are not classes (attributes of the inputs)"),
    ("cev / sde", "combined error variance and symmetric distance error of the per-class error rates",
     "one number each for how unevenly errors moved across classes (Blakeney et al. 2021)"),
    ("cie_fraction", "share of inputs on which the compressed and dense models' modal predictions differ",
     "the examples compression changed, to be audited by a person (Hooker et al. 2020)"),
    ("ece", "top-label expected calibration error", "compression can leave accuracy intact and still make the model "
     "over-confident"),
    ("p50 / p90 / p99 latency", "per-query wall-clock latency percentiles by nearest rank",
     "the deployment cost a user feels; tails matter for interactive use"),
    ("energy per inference", "energy over a measurement window divided by inferences, with the meter's scope",
     "the cost on battery-powered targets; only reported when a meter measured it"),
    ("peak RSS, artifact size", "memory of the measuring process and the file on disk", "whether the model fits"),
]


def _in_points(constraint_key: str) -> bool:
    """True when the constrained metric is a difference of fractions (a drop), shown in percentage points too."""
    row = metric_of_key(constraint_key)
    return row is not None and row.unit == "fraction difference"


def _summary(report: RunReport, chosen: OperatingPoint | None, acc_only: OperatingPoint | None) -> Section:
    sel = report.selection
    status = Paragraph(f"Run {report.run_id}, {report.started_at} to {report.finished_at}; run status {report.status} "
                       f"({report.n_failed} of {len(report.points)} operating points failed).")
    if chosen is None:
        text: list = [f"No operating point was selected at batch {sel.batch_size} ({sel.reason})."]
    else:
        text = ["The chosen operating point is ", *f.describe(chosen), f", variant of {report.model_name}"]
        if chosen.accuracy is not None:
            acc = chosen.accuracy
            text.append(f": top-1 {f.pct(acc.top1)}, worst-class recall {f.pct(acc.worst_class_recall)} "
                        f"({acc.worst_class})")
        if chosen.latency is not None:
            text.append(f", p50 latency {f.ms(chosen.latency.p50_ms)} ms")
        text.append(".")
    if sel.fairness_changed_choice:
        other = f.describe(acc_only) if acc_only is not None else ["no point"]
        text += [" ", Strong("Fairness changed the choice"), ": ranking by top-1 accuracy alone would have picked ",
                 *other, ", which fails the worst-class recall constraint."]
    elif acc_only is not None:
        text.append(" Fairness did not change the choice: the accuracy-only pick is the same point.")
    else:
        text.append(" Fairness did not change the choice: there is no accuracy-only pick either.")
    return Section("Summary", [status, Paragraph(text)], anchor="summary")


def _model_details(report: RunReport, chosen: OperatingPoint | None, base: OperatingPoint | None) -> Section:
    env = report.environment
    commit = Code(env.git_commit) if env.git_commit else f.unavailable(env.git_commit_unavailable_reason)
    rows: list[list[Text]] = [
        ["experiment", report.experiment_name],
        ["run id", Code(report.run_id)],
        ["base model", report.model_name],
        ["dense baseline", [*f.describe(base)] if base is not None else "n/a (no dense point measured)"],
        ["chosen point", Code(chosen.point_id) if chosen is not None else "n/a (no point selected)"],
        ["compression", f.NA if chosen is None else chosen.recipe
         or f"{chosen.prune_method} pruning ({chosen.prune_amount:g}), {chosen.precision}"],
        ["task", f"image classification, {len(report.dataset.class_names)} classes"],
        ["seeds per population", str(report.population)],
        ["harness commit", commit],
        ["run started / finished", f"{report.started_at} / {report.finished_at}"],
    ]
    return Section("Model details", [Table(["field", "value"], rows)], anchor="model-details")


def _intended_use(report: RunReport, chosen: OperatingPoint | None) -> Section:
    where = f"{chosen.runtime} at batch {chosen.batch_size}" if chosen is not None else "the measured runtime"
    return Section("Intended use and out-of-scope uses", [
        Paragraph("The experiment declared no intended use; this section states what the measurements support."),
        Paragraph([Strong("Intended"), f": classifying inputs like the {report.dataset.name} evaluation split into "
                   f"its {len(report.dataset.class_names)} classes, preprocessed as recorded below, on {where} on "
                   "hardware like the machine in the Environment section."]),
        BulletList([
            [Strong("Out of scope"), ": inputs from another distribution, other classes, or other preprocessing; "
             "none was evaluated."],
            [Strong("Out of scope"), ": another device, runtime or batch size without measuring again; latency, "
             "memory and energy do not transfer."],
            [Strong("Out of scope"), ": decisions about people (access, eligibility, surveillance) on the strength "
             "of this card: its group analysis covers only the attributes recorded with the dataset."],
        ]),
    ], anchor="intended-use")


def _factors(report: RunReport, chosen: OperatingPoint | None) -> Section:
    ds = report.dataset
    counts = f.train_counts(report)
    under = [f"{c} ({counts.get(c, 0)} training images)" if counts is not None else f"{c} (training count not recorded)"
             for c in ds.under_represented]
    groups = chosen.accuracy.per_group_support if chosen is not None and chosen.accuracy else {}
    blocks = [
        Paragraph([Strong("Classes"), f" ({len(ds.class_names)}): {', '.join(ds.class_names)}"]),
        Paragraph([Strong("Under-represented classes"), ": " + (", ".join(under) if under else "none declared") + "."]),
    ]
    if groups:
        blocks.append(Paragraph([Strong("Groups"), ": " + "; ".join(
            f"{attr}: " + ", ".join(f"{level} ({n} evaluation samples)" for level, n in levels.items())
            for attr, levels in groups.items()) + "."]))
        absent = {attr: [lv for lv in levels if not groups.get(attr, {}).get(lv)]
                  for attr, levels in ds.group_levels.items()}
        if any(absent.values()):
            blocks.append(Paragraph([Strong("Groups not covered"), ": " + "; ".join(
                f"{attr}: {', '.join(levels)}" for attr, levels in absent.items() if levels)
                + " (declared by the dataset, absent from the evaluation split: nothing here speaks for them)."]))
    else:
        blocks.append(Paragraph([Strong("Groups"), ": no group attributes were recorded with the evaluation split, "
                                 "so the analysis is by class only."]))
    return Section("Factors", blocks, anchor="factors")


def _metrics(report: RunReport) -> Section:
    sel = report.selection
    constraints: list[list[Text]] = [
        [Code(name), f"{value:g}" + (f" ({100 * value:.1f} pp)" if _in_points(name) else "")]
        for name, value in sel.constraints.items()]
    return Section("Metrics and why they were chosen", [
        Table(["metric", "what it measures", "why"], [[Code(m), what, why] for m, what, why in _METRICS]),
        Paragraph(["Pareto front over: ", *(_codes(report.objectives) or ["none declared"]), "."]),
        Table(["constraint", "value"], constraints or [["none", "-"]], caption="Selection constraints"),
    ], anchor="metrics")


def _codes(names: list[str]) -> list:
    out: list = []
    for i, name in enumerate(names):
        out += ([", "] if i else []) + [Code(name)]
    return out


def _data(report: RunReport) -> Section:
    ds = report.dataset
    prep = [f"{k}: {v}" for k, v in sorted(ds.preprocessing.items())] or ["none recorded"]
    rows = [[s.name, str(s.n_samples), *(str(s.per_class_counts.get(c, 0)) for c in ds.class_names)] for s in ds.splits]
    calib = next((s for s in ds.splits if s.name.lower().startswith("calib")), None)
    calib_text = (f"The calibration split ({calib.n_samples} images, disjoint from evaluation) calibrated the int8 "
                  "quantizers; it was not used for evaluation." if calib is not None
                  else "No calibration split is recorded for this dataset.")
    return Section("Evaluation and calibration data", [
        Paragraph(f"Dataset {ds.name}: {ds.description or 'no description recorded'}. Input shape (C, H, W): "
                  f"{' x '.join(str(d) for d in ds.input_shape)}."),
        Paragraph("Preprocessing:"), BulletList(prep),
        Table(["split", "n_samples", *ds.class_names], rows, caption="Split sizes"),
        Paragraph(calib_text),
    ], anchor="data")


def _policies(report: RunReport) -> list:
    sel = report.selection
    if not sel.policies:
        return [Paragraph("Only the constraint-first choice and the accuracy-only pick were recorded for this run "
                          "(no other selection policy).")]
    rows = []
    for c in sel.policies:
        p = f.find_point(report, c.point_id)
        rows.append([c.policy, f"{p.variant_name} / {p.runtime}" if p else (c.point_id or "none"),
                     ", ".join(c.binding_constraints) or "none", f.num(c.utility, 3), c.reason])
    return [Table(["policy", "pick", "binding constraints", "utility", "reason"], rows,
                  caption="Selection policies side by side")]


def _pareto(report: RunReport, chosen: OperatingPoint | None, acc_only: OperatingPoint | None,
            figures: Mapping[str, Figure]) -> Section:
    sel = report.selection
    binding = sorted({b for c in sel.policies if c.point_id == sel.point_id for b in c.binding_constraints})
    knee = f.find_point(report, sel.knee_point_id)
    blocks: list = [
        Paragraph([f"Selection at batch {sel.batch_size}: ", sel.reason]),
        Paragraph(["Accuracy-only pick", *([", ", *f.describe(acc_only)] if acc_only is not None else []), ": ",
                   sel.accuracy_only_reason]),
        Paragraph([Strong("Fairness changed the choice." if sel.fairness_changed_choice
                          else "Fairness did not change the choice.")]),
        Paragraph("Binding constraints of the choice: " + (", ".join(binding) if binding else
                  "none recorded" if not sel.policies else "none (the best point was feasible)") + "."),
        Paragraph(["Knee of the latency / top-1 front: ", *(f.describe(knee) if knee is not None else ["n/a"]),
                   f" ({sel.knee_reason or 'no knee recorded'})."]),
        *_policies(report),
        figures[FRONT],
        _all_points(report),
    ]
    return Section("Pareto position and the reason for the choice", blocks, anchor="pareto")


def _all_points(report: RunReport) -> Table:
    sel = report.selection
    rows = []
    for p in report.points:
        acc, art, lat = p.accuracy, p.artifact, p.latency
        mark = " (chosen)" if p.point_id == sel.point_id else (
            " (accuracy-only pick)" if p.point_id == sel.accuracy_only_point_id else "")
        rows.append([p.variant_name + mark, p.runtime, str(p.batch_size), p.precision,
                     f.pct(art.weight_sparsity) if art else f.NA, f.pct(acc.top1) if acc else f.NA,
                     f.pct(acc.worst_class_recall) if acc else f.NA, f.ms(lat.p50_ms) if lat else f.NA,
                     "yes" if p.on_pareto_front else "no",
                     p.status if p.status == "ok" else f"{p.status}: {f.short_error(p.error)}"])
    header = ["variant", "runtime", "batch", "precision", "sparsity", "top-1", "worst-class recall", "p50 ms",
              "on front", "status"]
    return Table(header, rows, caption="All operating points")


def _environment(report: RunReport) -> Section:
    env = report.environment
    unknown = "unknown"
    cores = (f"{env.physical_cores if env.physical_cores is not None else unknown} physical, "
             f"{env.logical_cores if env.logical_cores is not None else unknown} logical")
    rows = [[name, version or "not installed"] for name, version in sorted(env.library_versions.items())]
    return Section("Environment", [
        BulletList([f"CPU: {env.cpu_model or unknown} ({cores} cores)", f"OS: {env.os}", f"Python: {env.python}"]),
        Table(["library", "version"], rows),
    ], anchor="environment")


def _smallest_support(point: OperatingPoint | None) -> str | None:
    if point is None or point.accuracy is None:
        return None
    supports = {c: n for c, n in point.accuracy.per_class_support.items() if n > 0}
    if not supports:
        return None
    name, n = min(supports.items(), key=lambda item: (item[1], item[0]))
    return (f"Per-class recall on small supports is noisy: the smallest evaluation support is {n} images "
            f"(class {name}), where one image moves recall by {100 / n:.1f} pp.")


def _caveats(report: RunReport, chosen: OperatingPoint | None, base: OperatingPoint | None) -> Section:
    items = [
        f"All measurements come from this machine and this run ({report.run_id}); another device, driver, library "
        "version or load will give different numbers.",
        "Accuracy was measured on the exported artifact run through its runtime (the same artifact and runtime that "
        "were timed), not on the PyTorch model it was exported from.",
        "Compression can remove what a model knew about rare inputs first: the per-class and group tables above are "
        "the evidence, and classes or groups absent from the evaluation data are not covered at all.",
    ]
    measured = (_smallest_support(p) for p in (chosen, base, *report.points))
    items.append(next((t for t in measured if t is not None), None)
                 or "Per-class recall on small supports is noisy; no per-class support was recorded.")
    if chosen is not None and (chosen.energy is None or chosen.energy.energy_per_inference_mj is None):
        items.append(f"Energy was {energy_text(chosen)}. No energy figure is given or implied for the chosen point.")
    if report.n_failed:
        items.append(f"{report.n_failed} operating point(s) failed and could not be ranked; see the table above.")
    items += list(report.notes)
    return Section("Caveats and ethical considerations", [BulletList(items)], anchor="caveats")


# --------------------------------------------------------------------------- entry points


def build_card(report: RunReport, *, figures: Mapping[str, Figure] | None = None) -> Document:
    """The card as a document. ``figures``: from :func:`figure_plan` (default: the plan without raw samples)."""
    figures = figure_plan(report) if figures is None else figures
    chosen = f.find_point(report, report.selection.point_id)
    acc_only = f.find_point(report, report.selection.accuracy_only_point_id)
    base = f.baseline(report, chosen)
    sections = [
        _summary(report, chosen, acc_only),
        _model_details(report, chosen, base),
        _intended_use(report, chosen),
        _factors(report, chosen),
        _metrics(report),
        _data(report),
        *quantitative_sections(report, chosen, base, figures),
        bias_section(report, chosen, figures),
        deployment_section(report, chosen, figures),
        _pareto(report, chosen, acc_only, figures),
        _environment(report),
        _caveats(report, chosen, base),
    ]
    return Document(f"Model card: {report.experiment_name}", sections, metadata=card_metadata(report, chosen))


def card_dict(report: RunReport, *, figures: Mapping[str, Figure] | None = None) -> dict[str, Any]:
    """The JSON card: metadata, the rendered sections as typed blocks, and the whole record."""
    doc = build_card(report, figures=figures)
    return {"card_schema_version": CARD_SCHEMA_VERSION, "metadata": dict(doc.metadata), **document_dict(doc),
            "record": to_dict(report)}


def render_card(report: RunReport, fmt: str = "md", *, figures: Mapping[str, Figure] | None = None,
                images: Mapping[str, bytes] | None = None) -> str:
    """The card as ``md`` (YAML front matter + Markdown), ``html`` (self-contained) or ``json``."""
    if fmt == "json":
        return json.dumps(card_dict(report, figures=figures), indent=2) + "\n"
    doc = build_card(report, figures=figures)
    if fmt == "md":
        return render_markdown(doc, front_matter=front_matter(doc.metadata))
    if fmt == "html":
        return render_html(doc, subtitle=f"{report.model_name} · run {report.run_id} · {report.dataset.name}",
                           images=images)
    raise ValueError(f"unknown card format {fmt!r}; choose one of {', '.join(CARD_FORMATS)}")


def render_model_card(report: RunReport, *, figures: Mapping[str, Figure] | None = None) -> str:
    """The Markdown model card (with its YAML front matter) for one run."""
    return render_card(report, "md", figures=figures)
