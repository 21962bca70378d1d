"""The Markdown model card: what the chosen operating point costs, and whom it hurts.

:func:`render_model_card` is a pure function of a :class:`~harness.records.RunReport`:
no I/O, no clock, no environment lookups. Every number printed comes from the report;
a value that was not measured prints ``n/a`` with the reason recorded beside it, never 0.
"""

from __future__ import annotations

from pathlib import Path

from collections.abc import Iterable, Sequence
from typing import Any

from harness.records import OperatingPoint, RunReport

_NA = "n/a"
_NO_SUPPORT = "n/a (no support)"
_ERROR_CHARS = 80


# --------------------------------------------------------------------------- formatting


def _pct(x: float | None) -> str:
    return _NA if x is None else f"{100 * x:.1f}%"


def _pp(delta: float | None) -> str:
    """A signed difference of two fractions, in percentage points."""
    if delta is None:
        return _NA
    points = round(100 * delta, 1) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0
    return f"{points:+.1f} pp"


def _ms(x: float | None) -> str:
    return _NA if x is None else f"{x:.3f}"


def _mb(x: float | None) -> str:
    return _NA if x is None else f"{x:.2f} MB"


def _recall(x: float | None) -> str:
    return _NO_SUPPORT if x is None else _pct(x)


def _cell(value: Any) -> str:
    """A user-supplied value made safe for one Markdown table cell."""
    text = " ".join(str(value).split())  # newlines would end the row
    return text.replace("|", r"\|")


def _unavailable(reason: str | None) -> str:
    return f"{_NA} ({reason or 'no reason recorded'})"


def _short_error(error: str | None) -> str:
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    text = lines[0] if lines else "no error message recorded"
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Rows are already formatted; user-supplied strings must have gone through :func:`_cell`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _describe(point: OperatingPoint) -> str:
    return f"**{point.variant_name}** on {point.runtime} at batch {point.batch_size} ({point.precision})"


# --------------------------------------------------------------------------- lookups


def _point(report: RunReport, point_id: str | None) -> OperatingPoint | None:
    return next((p for p in report.points if p.point_id == point_id), None) if point_id else None


def _baseline(report: RunReport, chosen: OperatingPoint | None) -> OperatingPoint | None:
    """The dense point to compare against: same runtime and batch as the chosen one when measured."""
    dense = [p for p in report.points if p.variant_id == report.baseline_variant_id]

    def rank(p: OperatingPoint) -> tuple[bool, bool]:
        same = chosen is not None and (p.runtime, p.batch_size) == (chosen.runtime, chosen.batch_size)
        return (p.accuracy is None, not same)

    return min(dense, key=rank, default=None)


def _train_counts(report: RunReport) -> dict[str, int] | None:
    split = next((s for s in report.dataset.splits if s.name.lower() in ("train", "training")), None)
    return split.per_class_counts if split else None


# --------------------------------------------------------------------------- sections


def _title(report: RunReport) -> list[str]:
    return [
        f"# Model card: {report.experiment_name}",
        "",
        f"Run `{report.run_id}`, {report.started_at} to {report.finished_at}; run status **{report.status}**"
        f" ({report.n_failed} of {len(report.points)} operating points failed).",
    ]


def _summary(report: RunReport, chosen: OperatingPoint | None, acc_only: OperatingPoint | None) -> list[str]:
    sel = report.selection
    if chosen is None:
        text = f"No operating point was selected at batch {sel.batch_size} ({sel.reason})."
    else:
        text = f"The chosen operating point is {_describe(chosen)}, variant of {report.model_name}"
        if chosen.accuracy is not None:
            acc = chosen.accuracy
            text += (
                f": top-1 {_pct(acc.top1)}, worst-class recall {_pct(acc.worst_class_recall)}"
                f" ({acc.worst_class})"
            )
        if chosen.latency is not None:
            text += f", p50 latency {_ms(chosen.latency.p50_ms)} ms"
        text += "."
    if sel.fairness_changed_choice:
        other = _describe(acc_only) if acc_only is not None else "no point"
        text += (
            f" **Fairness changed the choice**: ranking by top-1 accuracy alone would have picked {other},"
            " which fails the worst-class recall constraint."
        )
    elif acc_only is not None:
        text += " Fairness did not change the choice: the accuracy-only pick is the same point."
    else:
        text += " Fairness did not change the choice: there is no accuracy-only pick either."
    return ["## Summary", "", text]


def _model_and_data(report: RunReport) -> list[str]:
    ds = report.dataset
    lines = [
        "## Model and data",
        "",
        f"- Model: {report.model_name}",
        f"- Dataset: {ds.name}: {ds.description or 'no description recorded'}",
        f"- Input shape (C, H, W): {' x '.join(str(d) for d in ds.input_shape)}",
        f"- Classes ({len(ds.class_names)}): {', '.join(ds.class_names)}",
        "- Preprocessing:" + ("" if ds.preprocessing else " none recorded"),
    ]
    lines += [f"  - {key}: {value}" for key, value in sorted(ds.preprocessing.items())]
    lines += ["", "Split sizes:", ""]
    lines += _table(
        ["split", "n_samples", *(_cell(c) for c in ds.class_names)],
        (
            [_cell(s.name), str(s.n_samples), *(str(s.per_class_counts.get(c, 0)) for c in ds.class_names)]
            for s in ds.splits
        ),
    )
    lines += ["", _under_represented(report)]
    return lines


def _under_represented(report: RunReport) -> str:
    under = report.dataset.under_represented
    if not under:
        return "**Under-represented classes**: none declared."
    counts = _train_counts(report)
    named = [
        f"{c} ({counts.get(c, 0)} training images)" if counts is not None else f"{c} (training count not recorded)"
        for c in under
    ]
    return f"**Under-represented classes**: {', '.join(named)}."


def _choice(report: RunReport, acc_only: OperatingPoint | None) -> list[str]:
    sel = report.selection
    lines = [
        "## The chosen point and why",
        "",
        f"Selection at batch {sel.batch_size}: {sel.reason}",
        "",
        "Accuracy-only pick" + (f", {_describe(acc_only)}" if acc_only is not None else "")
        + f": {sel.accuracy_only_reason}",
        "",
        "Constraints:",
        "",
    ]
    for name, value in sel.constraints.items():
        shown = f"{value:g} ({100 * value:.1f} pp)" if name.endswith("_drop") else f"{value:g}"
        lines.append(f"- {name} = {shown}")
    if not sel.constraints:
        lines.append("- none")
    return lines


def _deployment(chosen: OperatingPoint | None) -> list[str]:
    lines = ["## Deployment configuration", ""]
    if chosen is None:
        return [*lines, "No operating point was selected."]
    art = chosen.artifact
    rows = [
        ("variant", _cell(chosen.variant_name)),
        ("variant id", f"`{chosen.variant_id}`"),
        ("prune method", _cell(chosen.prune_method)),
        ("prune amount", f"{chosen.prune_amount:g}"),
        ("precision", _cell(chosen.precision)),
        ("runtime", _cell(chosen.runtime)),
        ("batch size", str(chosen.batch_size)),
        ("artifact path", f"`{_cell(art.path)}`" if art else _NA),
        ("artifact format", _cell(art.format) if art else _NA),
        ("file size", _mb(art.file_mb) if art else _NA),
        ("measured weight sparsity", _pct(art.weight_sparsity) if art else _NA),
        ("quantized nodes (Q + DQ)", str(art.n_quantized_nodes) if art else _NA),
        ("artifact sha256", f"`{art.sha256}`" if art else _NA),
    ]
    return [*lines, *_table(["setting", "value"], rows)]


def _performance(chosen: OperatingPoint | None) -> list[str]:
    lines = ["## Performance", ""]
    if chosen is None:
        return [*lines, "No operating point was selected."]
    return [*lines, *_latency(chosen), "", *_memory(chosen), "", *_energy(chosen)]


def _latency(point: OperatingPoint) -> list[str]:
    lat = point.latency
    if lat is None:
        return ["Latency: not measured."]
    rows = [
        ("p50", f"{_ms(lat.p50_ms)} ms"),
        ("p90", f"{_ms(lat.p90_ms)} ms" if lat.p90_ms is not None else _cell(_unavailable(lat.p90_unavailable_reason))),
        ("p99", f"{_ms(lat.p99_ms)} ms" if lat.p99_ms is not None else _cell(_unavailable(lat.p99_unavailable_reason))),
        ("mean", f"{_ms(lat.mean_ms)} ms"),
        ("std", f"{_ms(lat.std_ms)} ms"),
        ("min / max", f"{_ms(lat.min_ms)} / {_ms(lat.max_ms)} ms"),
        ("timed queries", str(lat.n_samples)),
        ("warm-up queries", str(lat.n_warmup)),
        ("throughput", f"{lat.throughput_sps:.1f} samples/s"),
    ]
    threads = str(lat.threads) if lat.threads is not None else "runtime default"
    how = (
        f"Latency per query at batch {lat.batch_size}, measured over {lat.duration_s:.2f} s: percentiles by "
        f"{lat.percentile_method}; profile {lat.profile}; isolation {lat.isolation}; threads {threads}."
    )
    return ["Latency:", "", *_table(["statistic", "value"], rows), "", how]


def _memory(point: OperatingPoint) -> list[str]:
    mem = point.memory
    if mem is None:
        artifact = _mb(point.artifact.file_mb) if point.artifact else _NA
        return [f"Memory: artifact {artifact}; peak RSS not measured."]
    rss = _mb(mem.peak_rss_mb) if mem.peak_rss_mb is not None else _unavailable(mem.peak_rss_unavailable_reason)
    return [f"Memory: artifact {_mb(mem.artifact_mb)}; peak RSS {rss}."]


def _energy_text(point: OperatingPoint) -> str:
    en = point.energy
    if en is None:
        return "not measured: no energy record for this point"
    if en.energy_per_inference_mj is None:
        return f"not measured: {en.unavailable_reason or 'no reason recorded'}"
    return (
        f"{en.energy_per_inference_mj:.3f} mJ per inference "
        f"(scope: {en.scope or 'unknown'}, source: {en.source or 'unknown'})"
    )


def _energy(point: OperatingPoint) -> list[str]:
    return [f"Energy: {_energy_text(point)}."]


def _per_class(report: RunReport, chosen: OperatingPoint | None, baseline: OperatingPoint | None) -> list[str]:
    lines = ["## Per-class recall: chosen point vs dense baseline", ""]
    if chosen is None or chosen.accuracy is None:
        return [*lines, "No operating point with an accuracy measurement was selected."]
    acc = chosen.accuracy
    base = baseline.accuracy if baseline is not None else None
    if baseline is None:
        lines += ["No dense baseline point was measured; deltas are n/a.", ""]
    else:
        lines += [f"Dense baseline: {_describe(baseline)}. Delta = chosen minus dense, in percentage points.", ""]
    under = set(report.dataset.under_represented)
    rows = []
    for name in report.dataset.class_names:
        mine = acc.per_class_recall.get(name)
        if base is None:
            dense_text, dense = "n/a (no baseline)", None
        else:
            dense = base.per_class_recall.get(name)
            dense_text = _recall(dense)
        delta = mine - dense if mine is not None and dense is not None else None
        marks = [m for m, on in (("under-represented", name in under), ("worst", name == acc.worst_class)) if on]
        ci = chosen.bias.per_class_delta_ci.get(name) if chosen.bias else None
        ci_text = f"[{_pp(ci[0])}, {_pp(ci[1])}]" if ci else "n/a"
        if chosen.bias and delta is not None and not chosen.bias.per_class_delta_significant.get(name, False):
            marks.append("not significant")
        rows.append(
            [
                _cell(name),
                str(acc.per_class_support.get(name, 0)),
                dense_text,
                _recall(mine),
                _pp(delta),
                ci_text,
                ", ".join(marks),
            ]
        )
    lines += _table(["class", "support", "dense recall", "chosen recall", "delta", "95% CI", "marks"], rows)
    lines += [
        "",
        "Marks: *under-represented* = declared under-represented in training; "
        "*worst* = lowest recall at the chosen point; *not significant* = the bootstrap 95% interval of the "
        "delta contains 0 (the change may be noise).",
    ]
    return lines


def _per_group(chosen: OperatingPoint | None, baseline: OperatingPoint | None) -> list[str]:
    acc = chosen.accuracy if chosen is not None else None
    if acc is None or not acc.per_group_accuracy:
        return []
    base = baseline.accuracy.per_group_accuracy if baseline is not None and baseline.accuracy else {}
    rows = []
    for attr, levels in acc.per_group_accuracy.items():
        for level, mine in levels.items():
            dense = base.get(attr, {}).get(level)
            delta = mine - dense if mine is not None and dense is not None else None
            worst = "worst" if acc.worst_group == f"{attr}={level}" else ""
            rows.append([_cell(attr), _cell(level), str(acc.per_group_support.get(attr, {}).get(level, 0)),
                         _recall(dense), _recall(mine), _pp(delta), worst])
    return [
        "## Accuracy by group: chosen point vs dense baseline",
        "",
        *_table(["attribute", "group", "support", "dense accuracy", "chosen accuracy", "delta", "marks"], rows),
    ]


def _ci(ci: list[float] | None, fmt) -> str:
    return f" (95% CI {fmt(ci[0])} to {fmt(ci[1])})" if ci else ""


def _num(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _bias_metrics(report: RunReport, chosen: OperatingPoint | None) -> list[str]:
    lines = ["## Bias metrics", ""]
    b = chosen.bias if chosen is not None else None
    if b is None:
        return [*lines, "Not computed: no selected point with stored predictions of it and of the dense model."]
    k = b.population_size
    pop = (
        f"populations of {k} seeds (dense and compressed), the deployed model being the first seed's"
        if k > 1
        else "one dense and one compressed model: the CIE below is plain disagreement, not the modal CIE of a population"
    )
    lines += [
        f"For the chosen point, against the dense model, over {pop}.",
        "",
        f"- **CIE fraction** (Compression Identified Exemplars, Hooker et al. 2020): {_pct(b.cie_fraction)} of the "
        f"evaluation split ({b.n_cie} examples){_ci(b.cie_ci, _pct)}: examples on which the compressed models' modal "
        "label differs from the dense models'. Errors concentrate there: "
        f"{_pct(b.cie_error_share)} of the compressed models' errors fall on CIE.",
        f"- **CEV / SDE** (Blakeney et al. 2021, reference-code definition, percent units): CEV {_num(b.cev)}"
        f"{_ci(b.cev_ci, _num)}, SDE {_num(b.sde)}: how unevenly the classes' false-positive and false-negative "
        "rates moved (0: every class moved alike)"
        + (f"; classes left out for a zero dense rate: {', '.join(b.cev_dropped_classes)}" if b.cev_dropped_classes else "")
        + ".",
        f"- **Classes hurt more than top-1** (disproportionate impact, Paganini 2020): {b.n_classes_hurt}.",
        "- **At-risk examples before compressing** (Iofinova et al. 2023): the dense population's uncertainty "
        + (f"predicts CIE membership with AUROC {_num(b.susceptibility_auroc, 3)} (0.5: no better than chance)."
           if b.susceptibility_auroc is not None else "could not be scored (no CIE, or no dense population logits)."),
        f"- **Calibration**: top-label ECE {_num(b.ece, 3)} (15 equal-width bins), ECE_sweep {_num(b.ece_sweep, 3)} "
        f"(equal-mass, monotonic sweep); {_pct(b.uncertain_share)} of predictions have top-1 probability below 0.9.",
        "",
        f"Intervals: percentile bootstrap over evaluation samples, {b.n_boot} resamples.",
    ]
    if report.cie_gallery_path:
        lines += ["", f"![CIE audit gallery]({Path(report.cie_gallery_path).name})", "",
                  "The audit lists (every CIE example, ranked by taxicab score, with its label and the dense and "
                  "compressed modal predictions) are in `audit/` beside this card."]
    rows = []
    for p in sorted(report.points, key=lambda p: (p.runtime, p.point_id)):
        if p.batch_size != report.selection.batch_size or p.bias is None:
            continue
        rows.append([_cell(p.variant_name), p.runtime, _num(p.bias.cev), _num(p.bias.sde), _pct(p.bias.cie_fraction),
                     _num(p.bias.ece, 3), str(p.bias.n_classes_hurt)])
    if rows:
        lines += ["", "Every variant:", ""]
        lines += _table(["variant", "runtime", "CEV", "SDE", "CIE", "ECE", "classes hurt"], rows)
        if k > 1:
            lines += ["", "The dense row's CEV and CIE are the seed-to-seed noise floor of the dense population."]
    return lines


def _all_points(report: RunReport) -> list[str]:
    sel = report.selection
    rows = []
    for p in report.points:
        acc, art, lat = p.accuracy, p.artifact, p.latency
        variant = _cell(p.variant_name)
        if p.point_id == sel.point_id:
            variant += " (chosen)"
        elif p.point_id == sel.accuracy_only_point_id:
            variant += " (accuracy-only pick)"
        status = _cell(p.status if p.status == "ok" else f"{p.status}: {_short_error(p.error)}")
        rows.append(
            [
                variant,
                _cell(p.runtime),
                str(p.batch_size),
                _cell(p.precision),
                _pct(art.weight_sparsity) if art else _NA,
                _pct(acc.top1) if acc else _NA,
                _pct(acc.worst_class_recall) if acc else _NA,
                _ms(lat.p50_ms) if lat else _NA,
                "yes" if p.on_pareto_front else "no",
                status,
            ]
        )
    header = [
        "variant", "runtime", "batch", "precision", "sparsity",
        "top-1", "worst-class recall", "p50 ms", "on front", "status",
    ]
    objectives = ", ".join(report.objectives) or "none declared"
    return ["## All operating points", "", f"Pareto front over: {objectives}.", "", *_table(header, rows)]


def _environment(report: RunReport) -> list[str]:
    env = report.environment
    cores = f"{env.physical_cores if env.physical_cores is not None else 'unknown'} physical, " + (
        f"{env.logical_cores if env.logical_cores is not None else 'unknown'} logical"
    )
    commit = (
        f"`{env.git_commit}`"
        if env.git_commit
        else f"unavailable ({env.git_commit_unavailable_reason or 'no reason recorded'})"
    )
    lines = [
        "## Environment",
        "",
        f"- CPU: {env.cpu_model or 'unknown'} ({cores} cores)",
        f"- OS: {env.os}",
        f"- Python: {env.python}",
        f"- Git commit: {commit}",
        "",
    ]
    rows = [
        [_cell(name), _cell(version) if version else "not installed"]
        for name, version in sorted(env.library_versions.items())
    ]
    return [*lines, *_table(["library", "version"], rows)]


def _smallest_support(point: OperatingPoint | None) -> str | None:
    if point is None or point.accuracy is None:
        return None
    supports = {c: n for c, n in point.accuracy.per_class_support.items() if n > 0}
    if not supports:
        return None
    name, n = min(supports.items(), key=lambda item: (item[1], item[0]))
    return (
        f"Per-class recall on small supports is noisy: the smallest evaluation support is {n} images "
        f"(class {name}), where one image moves recall by {100 / n:.1f} pp."
    )


def _caveats(report: RunReport, chosen: OperatingPoint | None, baseline: OperatingPoint | None) -> list[str]:
    items = [
        f"All measurements come from this machine and this run ({report.run_id}); another device, "
        "driver, library version or load will give different numbers.",
        "Accuracy was measured on the exported artifact run through its runtime (the same artifact and "
        "runtime that were timed), not on the PyTorch model it was exported from.",
    ]
    measured = (_smallest_support(p) for p in (chosen, baseline, *report.points))
    noisy = next((text for text in measured if text is not None), None)
    items.append(noisy or "Per-class recall on small supports is noisy; no per-class support was recorded.")
    if chosen is not None and (chosen.energy is None or chosen.energy.energy_per_inference_mj is None):
        items.append(
            f"Energy was {_energy_text(chosen)}. No energy figure is given or implied for the chosen point."
        )
    if report.n_failed:
        items.append(f"{report.n_failed} operating point(s) failed and could not be ranked; see the table above.")
    items += list(report.notes)
    return ["## Caveats", "", *(f"- {item}" for item in items)]


# --------------------------------------------------------------------------- entry point


def render_model_card(report: RunReport) -> str:
    """The Markdown model card for one run."""
    chosen = _point(report, report.selection.point_id)
    acc_only = _point(report, report.selection.accuracy_only_point_id)
    baseline = _baseline(report, chosen)
    sections = [
        _title(report),
        _summary(report, chosen, acc_only),
        _model_and_data(report),
        _choice(report, acc_only),
        _deployment(chosen),
        _performance(chosen),
        _per_class(report, chosen, baseline),
        _per_group(chosen, baseline),
        _bias_metrics(report, chosen),
        _all_points(report),
        _environment(report),
        _caveats(report, chosen, baseline),
    ]
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"
