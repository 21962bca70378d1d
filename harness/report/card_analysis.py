"""The card's measured sections: quantitative analysis, bias metrics and deployment (pure).

Each function returns a :class:`~harness.report.document.Section` built from the record;
values that were not measured print ``n/a`` with the recorded reason, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.records import AccuracyStats, LatencyStats, OperatingPoint, RunReport
from harness.report import _format as f
from harness.report.document import Block, BulletList, Code, Figure, Paragraph, Section, Strong, Table, Text
from harness.report.figures import CIE_GALLERY, LATENCY, POWER, RECALL_DELTA


def _overall_rows(acc: AccuracyStats, base: OperatingPoint | None) -> list[list]:
    dense = base.accuracy if base is not None else None
    rows = []
    for label, mine, theirs, extra in (
        ("top-1 accuracy", acc.top1, dense.top1 if dense else None, ""),
        ("worst-class recall", acc.worst_class_recall, dense.worst_class_recall if dense else None,
         f"worst class {acc.worst_class}" + (f" (dense: {dense.worst_class})" if dense else "")),
        ("worst-group accuracy", acc.worst_group_accuracy, dense.worst_group_accuracy if dense else None,
         f"worst group {acc.worst_group}" if acc.worst_group else "no group attributes recorded"),
    ):
        delta = mine - theirs if mine is not None and theirs is not None else None
        rows.append([label, f.pct(theirs) if dense else "n/a (no baseline)", f.pct(mine), f.pp(delta), extra])
    if acc.top5 is not None:
        theirs = dense.top5 if dense else None
        rows.insert(1, ["top-5 accuracy", f.pct(theirs) if dense else "n/a (no baseline)", f.pct(acc.top5),
                        f.pp(acc.top5 - theirs if theirs is not None else None), ""])
    return rows


def _delta_ci(bias, ci: list[float] | None) -> str:
    """A delta's bootstrap interval as a table cell; n/a when the point has no bias record or no interval."""
    if bias is None:
        return "n/a (no bias record)"
    return f"[{f.pp(ci[0])}, {f.pp(ci[1])}]" if ci else "n/a"


def _per_class_rows(report: RunReport, chosen: OperatingPoint, acc: AccuracyStats,
                    base: OperatingPoint | None) -> list[list]:
    dense_acc = base.accuracy if base is not None else None
    under = set(report.dataset.under_represented)
    rows = []
    for name in report.dataset.class_names:
        mine = acc.per_class_recall.get(name)
        if dense_acc is None:
            dense_text, dense = "n/a (no baseline)", None
        else:
            dense = dense_acc.per_class_recall.get(name)
            dense_text = f.recall(dense)
        delta = mine - dense if mine is not None and dense is not None else None
        marks = [m for m, on in (("under-represented", name in under), ("worst", name == acc.worst_class)) if on]
        b = chosen.bias
        ci_text = _delta_ci(b, b.per_class_delta_ci.get(name) if b else None)
        if b and delta is not None and not b.per_class_delta_significant.get(name, False):
            marks.append("not significant")
        rows.append([name, str(acc.per_class_support.get(name, 0)), dense_text, f.recall(mine), f.pp(delta),
                     ci_text, ", ".join(marks)])
    return rows


def _per_group_rows(chosen: OperatingPoint, acc: AccuracyStats, base: OperatingPoint | None) -> list[list]:
    dense = base.accuracy.per_group_accuracy if base is not None and base.accuracy else {}
    rows = []
    for attr, levels in acc.per_group_accuracy.items():
        for level, mine in levels.items():
            theirs = dense.get(attr, {}).get(level)
            delta = mine - theirs if mine is not None and theirs is not None else None
            key = f"{attr}={level}"
            ci_text = _delta_ci(chosen.bias, chosen.bias.per_group_delta_ci.get(key) if chosen.bias else None)
            marks = [m for m, on in (("worst", acc.worst_group == key),
                                     (f"small support (< {acc.min_group_support})", key in acc.small_support_groups),
                                     ("not significant", chosen.bias is not None and delta is not None
                                      and not chosen.bias.per_group_delta_significant.get(key, False))) if on]
            rows.append([attr, level, str(acc.per_group_support.get(attr, {}).get(level, 0)), f.recall(theirs),
                         f.recall(mine), f.pp(delta), ci_text, ", ".join(marks)])
    return rows


def quantitative_sections(report: RunReport, chosen: OperatingPoint | None, base: OperatingPoint | None,
                          figures: Mapping[str, Figure]) -> list[Section]:
    if chosen is None or chosen.accuracy is None:
        return [Section("Quantitative analysis", [
            Paragraph("No operating point with an accuracy measurement was selected."), figures[RECALL_DELTA]],
            anchor="quantitative")]
    intro = (["No dense baseline point was measured; deltas are n/a."] if base is None
             else ["Against the dense baseline ", *f.describe(base), ". Delta = chosen minus dense, in percentage points."])
    overall = Section("Quantitative analysis", [
        Paragraph(intro),
        Table(["metric", "dense", "chosen", "delta", "note"], _overall_rows(chosen.accuracy, base)),
        figures[RECALL_DELTA],
    ], anchor="quantitative")
    per_class = Section("Per-class recall: chosen point vs dense baseline", [
        Table(["class", "support", "dense recall", "chosen recall", "delta", "95% CI", "marks"],
              _per_class_rows(report, chosen, chosen.accuracy, base)),
        Paragraph("Marks: under-represented = declared under-represented in training; worst = lowest recall at the "
                  "chosen point; not significant = the bootstrap 95% interval of the delta contains 0 (the change "
                  "may be noise)."),
    ], anchor="per-class")
    sections = [overall, per_class]
    if chosen.accuracy.per_group_accuracy:
        sections.append(Section("Accuracy by group: chosen point vs dense baseline", [Table(
            ["attribute", "group", "support", "dense accuracy", "chosen accuracy", "delta", "95% CI", "marks"],
            _per_group_rows(chosen, chosen.accuracy, base)), Paragraph(
            "Intersections of attributes appear as a&b. Small support: fewer evaluation samples than "
            "groups.min_support, kept in every table and in the worst-group minimum, but read with care.")],
            anchor="per-group"))
    return sections


# --------------------------------------------------------------------------- bias


def _cev_definition(variant: str) -> str:
    return ("reference-code definition, percent units" if variant == "reference"
            else "normalised definition, rates as fractions")


def _amplification(b) -> str:
    if b.bias_amp_a_to_t is None:
        return f.unavailable(b.bias_amp_unavailable_reason) + "."
    by_attr = "; ".join(f"{k} {v:+.3f}" for k, v in sorted(b.bias_amp_delta_by_attribute.items()) if v is not None)
    return (f"dense {f.num(b.bias_amp_a_to_t_dense, 3)}, compressed {f.num(b.bias_amp_a_to_t, 3)}, change "
            f"{b.bias_amp_a_to_t_delta:+.3f} (above 0: compression amplified the attribute-task association)"
            + (f"; by attribute: {by_attr}" if by_attr else "") + ".")


def _threshold(b) -> str:
    if b.calibrated_top1 is None:
        return f.unavailable(b.threshold_calibration_unavailable_reason) + "."
    amp = (f"; amplification change after calibration {b.calibrated_bias_amp_a_to_t_delta:+.3f}"
           if b.calibrated_bias_amp_a_to_t_delta is not None else "")
    return (f"with the threshold set on the calibration split so the predicted positive share matches the true one "
            f"(threshold {f.num(b.calibrated_threshold, 3)} on z1 - z0), top-1 {f.pct(b.calibrated_top1)}, worst group "
            f"{b.calibrated_worst_group} at {f.pct(b.calibrated_worst_group_accuracy)}; positive share true "
            f"{f.pct(b.positive_share_true)}, argmax {f.pct(b.positive_share_predicted)}, calibrated "
            f"{f.pct(b.positive_share_calibrated)}{amp}.")


def bias_section(report: RunReport, chosen: OperatingPoint | None, figures: Mapping[str, Figure]) -> Section:
    b = chosen.bias if chosen is not None else None
    if b is None:
        return Section("Bias metrics", [
            Paragraph("Not computed: no selected point with stored predictions of it and of the dense model."),
            figures[CIE_GALLERY]], anchor="bias")
    k = b.population_size
    pop = (f"populations of {k} seeds (dense and compressed), the deployed model being the first seed's" if k > 1
           else "one dense and one compressed model: the CIE below is plain disagreement, not the modal CIE of a "
                "population")
    dropped = f"; classes left out for a zero dense rate: {', '.join(b.cev_dropped_classes)}" if b.cev_dropped_classes else ""
    auroc = (f"predicts CIE membership with AUROC {f.num(b.susceptibility_auroc, 3)} (0.5: no better than chance)."
             if b.susceptibility_auroc is not None else "could not be scored (no CIE, or no dense population logits).")
    items: list[Text] = [
        [Strong("CIE fraction"), f" (Compression Identified Exemplars, Hooker et al. 2020): {f.pct(b.cie_fraction)} of "
         f"the evaluation split ({b.n_cie} examples){f.ci_text(b.cie_ci, f.pct)}: examples on which the compressed "
         f"models' modal label differs from the dense models'. Errors concentrate there: {f.pct(b.cie_error_share)} "
         "of the compressed models' errors fall on CIE."],
        [Strong("CEV / SDE"), f" (Blakeney et al. 2021, {_cev_definition(b.cev_variant)}): CEV "
         f"{f.num(b.cev)}{f.ci_text(b.cev_ci, f.num)}, SDE {f.num(b.sde)}: how unevenly the classes' false-positive "
         f"and false-negative rates moved (0: every class moved alike){dropped}."],
        [Strong("Classes hurt more than top-1"), f" (disproportionate impact, Paganini 2020): {b.n_classes_hurt}."],
        [Strong("At-risk examples before compressing"), " (Iofinova et al. 2023): the dense population's "
         f"uncertainty {auroc}"],
        [Strong("Calibration"), f": top-label ECE {f.num(b.ece, 3)} (15 equal-width bins), ECE_sweep "
         f"{f.num(b.ece_sweep, 3)} (equal-mass, monotonic sweep); {f.pct(b.uncertain_share)} of predictions have "
         "top-1 probability below 0.9."],
        [Strong("Bias amplification"), f" (directional, attribute to task, Wang & Russakovsky 2021): {_amplification(b)}"],
        [Strong("Threshold calibration"), f" (Iofinova et al. 2023, binary targets): {_threshold(b)}"],
    ]
    if b.cie_accuracy_dense is not None:
        items.insert(1, [Strong("Accuracy on CIE"), f": dense {f.pct(b.cie_accuracy_dense)} on CIE vs "
                         f"{f.pct(b.cie_accuracy_rest_dense)} elsewhere; compressed {f.pct(b.cie_accuracy_compressed)} "
                         f"vs {f.pct(b.cie_accuracy_rest_compressed)}; the compressed models are right on "
                         f"{b.n_cie_compressed_correct} of the {b.n_cie} CIE."])
    if b.susceptibility_precision is not None:
        items.append([Strong("Uncertain set as a CIE predictor"), f": precision {f.pct(b.susceptibility_precision)}, "
                      f"recall {f.pct(b.susceptibility_recall)}."])
    blocks: list[Block] = [Paragraph(f"For the chosen point, against the dense model, over {pop}."), BulletList(items),
              Paragraph(f"Intervals: percentile bootstrap over evaluation samples, {b.n_boot} resamples."),
              figures[CIE_GALLERY]]
    if report.cie_gallery_path:
        blocks.append(Paragraph("The audit lists (every CIE example, ranked by taxicab score, with its label and the "
                                "dense and compressed modal predictions) are in the run directory beside this card."))
    rows = [[p.variant_name, p.runtime, f.num(p.bias.cev), f.num(p.bias.sde), f.pct(p.bias.cie_fraction),
             f.num(p.bias.ece, 3), str(p.bias.n_classes_hurt)]
            for p in sorted(report.points, key=lambda p: (p.runtime, p.point_id))
            if p.batch_size == report.selection.batch_size and p.bias is not None]
    if rows:
        blocks.append(Table(["variant", "runtime", "CEV", "SDE", "CIE", "ECE", "classes hurt"], rows,
                            caption="Every variant"))
        if k > 1:
            blocks.append(Paragraph("The dense row's CEV and CIE are the seed-to-seed noise floor of the dense "
                                    "population."))
    return Section("Bias metrics", blocks, anchor="bias")


# --------------------------------------------------------------------------- deployment


def _configuration(report: RunReport, chosen: OperatingPoint) -> Table:
    art = chosen.artifact
    no_art = "n/a (no artifact recorded)"
    rows: list[list[Text]] = [
        ["target device", f"{report.environment.cpu_model or 'unknown CPU'} ({report.environment.os}); "
                          + (f"device profile {report.target}" if report.target else "no device profile given")],
        ["variant", chosen.variant_name],
        ["variant id", Code(chosen.variant_id)],
        ["prune method", chosen.prune_method],
        ["prune amount (requested)", f"{chosen.prune_amount:g}"],
        ["measured weight sparsity", f.pct(art.weight_sparsity) if art else no_art],
        ["precision", chosen.precision],
        ["runtime", chosen.runtime],
        ["batch size", str(chosen.batch_size)],
        ["artifact", [Code(art.path), f" ({art.format}, {f.mb(art.file_mb)})"] if art else no_art],
        ["quantized nodes (Q + DQ)", str(art.n_quantized_nodes) if art else no_art],
        ["artifact sha256", Code(art.sha256) if art else no_art],
        ["engine summary", _engine_summary(chosen)],
    ]
    return Table(["setting", "value"], rows, caption="Configuration")


def _engine_summary(point: OperatingPoint) -> str:
    eng = point.engine
    if eng is None:
        return f"n/a ({point.runtime} runs the exported file itself; engines exist for the tensorrt runtime only)"
    if eng.n_layers is None:
        layers = "layer counts n/a (the engine inspector gave no per-layer report)"
    else:
        eligible = "" if eng.n_sparse_eligible is None else f" of {eng.n_sparse_eligible} eligible for sparse math"
        layers = (f"{eng.n_layers} layers: {eng.n_int8_layers} int8, {eng.n_fp16_layers} fp16, "
                  f"{eng.n_sparse_layers} on sparse kernels{eligible}")
    flags = ", ".join(eng.network_flags + eng.builder_flags) or "none"
    return (f"TensorRT {eng.trt_version} on {eng.device}, built from the {eng.source_format} file; {layers}; "
            f"flags {flags}; {f.mb(eng.engine_mb)}{' (from the engine cache)' if eng.cache_hit else ''}")


def _stability(lat) -> str:
    if lat.stability is None:
        return "n/a (measured before the convergence check existed)"
    cv = f"; robust CV {lat.robust_cv:.1%}" if lat.robust_cv is not None else ""
    cv += f", CV {lat.cv:.1%}" if lat.cv is not None else ""
    if lat.stability == "unstable":
        return f"unstable: {lat.unstable_reason or 'no reason recorded'}{cv}"
    return f"{lat.stability}{cv}"


def _timed_is_scored(point: OperatingPoint, lat: LatencyStats) -> str:
    art = point.artifact
    if lat.timed_artifact_sha256 is None or art is None:
        return "n/a (no hash of the timed file recorded)"
    same = "the same file" if lat.timed_artifact_sha256 == art.sha256 else "a DIFFERENT file"
    if lat.output_check_argmax_agreement is None:
        check = f.unavailable(lat.output_check_unavailable_reason)
    else:
        check = (f"top-1 agreement {f.pct(lat.output_check_argmax_agreement)} on {lat.output_check_n} inputs, "
                 f"max |diff| {lat.output_check_max_abs_diff:.2g}")
    return f"the timed process loaded {same} as the accuracy pass (sha256); outputs: {check}"


def _device_state(point: OperatingPoint) -> str:
    ds = point.device_state
    if ds is None:
        return "Device state: not recorded."
    parts = []
    governors = sorted(set(ds.cpu_governors.values()))
    parts.append(f"CPU governor {', '.join(governors)}" if governors else
                 f"CPU governor {f.unavailable(ds.unavailable_reasons.get('cpu_governors'))}")
    if ds.temperatures_c:
        hottest = max(ds.temperatures_c, key=lambda zone: ds.temperatures_c[zone])
        after = ds.temperatures_after_c.get(hottest)
        parts.append(f"hottest zone {hottest} {ds.temperatures_c[hottest]:.0f} C before"
                     + (f", {after:.0f} C after" if after is not None else ""))
    else:
        parts.append(f"temperatures {f.unavailable(ds.unavailable_reasons.get('temperatures_c'))}")
    if ds.gpu:
        parts.append("GPU " + ", ".join(f"{k} {v}" for k, v in sorted(ds.gpu.items())))
    if ds.power_mode is not None:
        expected = f" (profile default {ds.expected_power_mode})" if ds.expected_power_mode else ""
        parts.append(f"power mode {ds.power_mode}{expected}")
    if ds.jetson_clocks_active is not None:
        parts.append(f"jetson_clocks {'active' if ds.jetson_clocks_active else 'not active'}")
    if ds.throttled is None:
        parts.append(f"throttling {f.unavailable(ds.unavailable_reasons.get('throttled'))}")
    else:
        parts.append("THROTTLED (" + ", ".join(ds.throttle_reasons) + ")" if ds.throttled else "not throttled")
    if ds.clocks_locked is not None:
        lock = ds.clock_lock or {}
        how = f" by {lock['method']}" if lock.get("method") else ""
        mhz = f" at {lock['gpu_clock_mhz']} MHz" if lock.get("gpu_clock_mhz") else ""
        parts.append(f"clocks locked{how}{mhz}" if ds.clocks_locked else "clock lock asked for but not taken")
    text = "Device state: " + "; ".join(parts) + "."
    if ds.warnings:
        text += " Warnings: " + "; ".join(ds.warnings) + "."
    return text


def _gpu_timing(point: OperatingPoint) -> list:
    g = point.gpu_timing
    if g is None:
        return []
    rows = [
        ["GPU compute (CUDA events)", f"{f.ms(g.compute_ms)} ms"],
        ["end to end (H2D + compute + D2H)", f"{f.ms(g.e2e_ms)} ms"],
        ["host to device / device to host", f"{f.ms(g.h2d_ms)} / {f.ms(g.d2h_ms)} ms"],
        ["enqueue (host)", f"{f.ms(g.enqueue_ms)} ms" if g.enqueue_ms is not None else
         f.unavailable(g.unavailable_reasons.get("enqueue_ms"))],
        ["pipelined throughput", f"{g.pipelined_throughput_sps:.1f} samples/s ({g.pipeline_depth} in flight)"
         if g.pipelined_throughput_sps is not None else f.unavailable(g.unavailable_reasons.get("pipelined_throughput_sps"))],
        ["CUDA graphs", "yes" if g.cuda_graphs else "no"],
    ]
    blocks: list = [Table(["GPU timing", "value"], rows, caption=f"GPU timing, medians of {g.n_queries} queries")]
    if g.warnings:
        blocks.append(BulletList(list(g.warnings)))
    return blocks


def _latency(point: OperatingPoint) -> list:
    lat = point.latency
    if lat is None:
        return [Paragraph([Strong("Latency"), ": not measured."])]
    def tail(value, reason):
        return f"{f.ms(value)} ms" if value is not None else f.unavailable(reason)
    def in_ms(value):
        return f"{f.ms(value)} ms"
    rows = [
        ["scenario", f"{lat.scenario} (judged by {lat.headline_metric})" if lat.scenario else
         "n/a (measured before scenarios were recorded)"],
        ["p50", f"{f.ms(lat.p50_ms)} ms{f.ci_text(lat.p50_ci_ms, in_ms)}"],
        ["p90", f"{tail(lat.p90_ms, lat.p90_unavailable_reason)}{f.ci_text(lat.p90_ci_ms, in_ms)}"],
        ["p99", tail(lat.p99_ms, lat.p99_unavailable_reason)],
        ["mean", f"{f.ms(lat.mean_ms)} ms"],
        ["std", f"{f.ms(lat.std_ms)} ms"],
        ["min / max", f"{f.ms(lat.min_ms)} / {f.ms(lat.max_ms)} ms"],
        ["timed queries", str(lat.n_samples)],
        ["warm-up queries", str(lat.n_warmup)],
        ["throughput", f"{lat.throughput_sps:.1f} samples/s"],
        ["stability", _stability(lat)],
        ["timed = scored", _timed_is_scored(point, lat)],
    ]
    threads = str(lat.threads) if lat.threads is not None else "runtime default"
    how = (f"Scope: one query of batch {lat.batch_size} through {point.runtime}, wall-clock, on the host. Method: "
           f"timed over {lat.duration_s:.2f} s after warm-up, percentiles by {lat.percentile_method}; profile "
           f"{lat.profile}; isolation {lat.isolation}, threads {threads}. {_device_state(point)}")
    return [Table(["statistic", "value"], rows, caption="Latency"), Paragraph(how), *_gpu_timing(point)]


def _memory(point: OperatingPoint) -> Paragraph:
    mem = point.memory
    if mem is None:
        artifact = f.mb(point.artifact.file_mb) if point.artifact else f.NA
        return Paragraph([Strong("Memory"), f": artifact {artifact}; peak RSS not measured."])
    def part(name: str, value: float | None) -> str:
        return f.mb(value) if value is not None else f.unavailable(mem.unavailable_reasons.get(name))
    rss = f.mb(mem.peak_rss_mb) if mem.peak_rss_mb is not None else f.unavailable(mem.peak_rss_unavailable_reason)
    text = (f": artifact {f.mb(mem.artifact_mb)} on disk (weights {part('weights_mb', mem.weights_mb)}); peak RSS "
            f"{rss}, of which the runtime and loaded model took {part('runtime_load_mb', mem.runtime_load_mb)} and "
            f"inference grew {part('inference_rss_growth_mb', mem.inference_rss_growth_mb)}; activations/workspace "
            f"{part('activation_mb', mem.activation_mb)}; GPU peak {part('peak_gpu_mb', mem.peak_gpu_mb)}"
            + (f", this process on the GPU {f.mb(mem.process_gpu_mb)}" if mem.process_gpu_mb is not None else "")
            + (f"; unified-memory delta {f.mb(mem.system_memory_delta_mb)}" if mem.system_memory_delta_mb is not None
               else "")
            + (f"; weights stored sparse ({mem.sparse_weights_format}) would take {f.mb(mem.sparse_weights_mb)} "
               "(computed, not a shipped file)" if mem.sparse_weights_mb is not None else "")
            + ". Scope: the "
            "measuring process, model loaded and timed. Method: the kernel's high-water mark (VmHWM) and "
            "/proc/self/status before and after loading.")
    return Paragraph([Strong("Memory"), text])


def energy_text(point: OperatingPoint) -> str:
    en = point.energy
    if en is None:
        return "not measured: no energy record for this point"
    if en.energy_per_inference_mj is None:
        return f"not measured: {en.unavailable_reason or 'no reason recorded'}"
    dynamic = (f"{en.dynamic_energy_per_inference_mj:.3f} mJ dynamic (idle {en.idle_power_w:.2f} W subtracted)"
               if en.dynamic_energy_per_inference_mj is not None and en.idle_power_w is not None else
               f"dynamic {f.unavailable(en.dynamic_unavailable_reason)}")
    text = (f"{en.energy_per_inference_mj:.3f} mJ per inference gross, {dynamic} (scope: {en.scope or 'unknown'}, "
            f"source: {en.source or 'unknown'}{f', meter {en.meter}' if en.meter else ''})")
    if en.warnings:
        text += "; " + "; ".join(en.warnings)
    return text


def deployment_section(report: RunReport, chosen: OperatingPoint | None, figures: Mapping[str, Figure]) -> Section:
    if chosen is None:
        return Section("Deployment", [Paragraph("No operating point was selected."), figures[LATENCY]],
                       anchor="deployment")
    blocks = [_configuration(report, chosen), *_latency(chosen), figures[LATENCY], _memory(chosen),
              Paragraph([Strong("Energy"), f": {energy_text(chosen)}."]), figures[POWER]]
    return Section("Deployment", blocks, anchor="deployment")
