"""The card's figures: which exist and why not (pure), and drawing them (PNG + SVG).

:func:`figure_plan` decides, from the record and the raw data handed in, which figures a
card has and, for each one it lacks, the reason (every one of them when matplotlib, the
plots extra, is not installed); it draws nothing, so the Markdown card re-rendered from the
store names exactly the figures the run wrote. :func:`write_figures`
draws the planned ones (matplotlib, Agg, imported inside) and returns their bytes for the
self-contained HTML card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from harness.records import OperatingPoint, RunReport
from harness.report.document import Figure

FRONT, RECALL_DELTA, LATENCY, POWER, CIE_GALLERY = "front", "recall_delta", "latency", "power", "cie_gallery"
#: every figure's reason when matplotlib (the plots extra) is not installed: the card is written without figures
NO_PLOTS = "matplotlib is not installed, so no figure was drawn (pip install 'harness[plots]')"


@dataclass(frozen=True)
class PowerTrace:
    """Power samples a sampling meter took around one measurement window (times in seconds, any origin)."""

    point_id: str
    t_s: list[float]
    power_w: dict[str, list[float]]  # rail -> watts, one per time
    window_s: tuple[float, float]  # the measurement window, same clock as t_s
    source: str


def _files(stem: str) -> tuple[str, str]:
    return (f"{stem}.svg", f"{stem}.png")


def _delta_points(report: RunReport) -> list[OperatingPoint]:
    """Compressed points at the selection batch with per-class deltas vs the dense model."""
    return [
        p for p in report.points
        if p.status == "ok" and p.batch_size == report.selection.batch_size and p.accuracy is not None
        and p.variant_id != report.baseline_variant_id and p.accuracy.per_class_delta
    ]


def _power_missing(report: RunReport) -> str:
    chosen = next((p for p in report.points if p.point_id == report.selection.point_id), None)
    energy = chosen.energy if chosen is not None else None
    if energy is None:
        return "no energy meter ran for the chosen point, so no power was sampled"
    if energy.energy_per_inference_mj is None:
        return f"no meter measured energy ({energy.unavailable_reason or 'no reason recorded'})"
    if "counter" in (energy.source or ""):
        return (f"the {energy.source} meter reads a cumulative energy counter at the window edges; "
                "it takes no power samples to plot")
    return f"the {energy.source or 'unknown'} meter's power samples were not kept with this run (only the window energy is)"


def recorded_power_traces(report: RunReport) -> list[PowerTrace]:
    """The power traces that sampling meters left on the points' energy records (times from the window start)."""
    traces = []
    for p in report.points:
        en = p.energy
        if en is not None and en.power_trace_t_s and len(en.power_trace_t_s) == len(en.power_trace_w):
            end = en.window_s if en.window_s is not None else en.power_trace_t_s[-1]
            traces.append(PowerTrace(p.point_id, list(en.power_trace_t_s), {"total": list(en.power_trace_w)},
                                     (0.0, float(end)), en.meter or en.source or "meter"))
    return traces


def figure_plan(
    report: RunReport,
    *,
    latency_samples: Mapping[str, Sequence[float]] | None = None,
    power_traces: Sequence[PowerTrace] = (),
) -> dict[str, Figure]:
    """Every figure of the card, with its file names when drawable and the reason when not."""
    samples = {k: v for k, v in (latency_samples or {}).items() if len(v)}
    power_traces = power_traces or recorded_power_traces(report)
    batch = report.selection.batch_size
    plan = {
        FRONT: Figure(FRONT, "Operating points: latency against top-1",
                      f"p50 latency against top-1 at batch {batch}, coloured by worst-class recall; the star is the "
                      "chosen point, the red ring the accuracy-only pick, outlined points are on the Pareto front.",
                      files=_files("front")),
    }
    if _delta_points(report):
        plan[RECALL_DELTA] = Figure(
            RECALL_DELTA, "Per-class recall change against the dense model",
            "Recall of each class (rows) for each compressed variant (columns) minus the dense model's on the same "
            "runtime, in percentage points; blue gained, red lost.", files=_files("recall_delta"))
    else:
        plan[RECALL_DELTA] = Figure(RECALL_DELTA, "Per-class recall change against the dense model", "",
                                    missing="no compressed point has per-class deltas against a dense baseline")
    if samples:
        plan[LATENCY] = Figure(LATENCY, "Latency distribution per operating point",
                               "Every timed query of each point (box: quartiles; whiskers: 1.5 IQR; dots: outliers), "
                               "from the raw samples in the store.", files=_files("latency"))
    else:
        plan[LATENCY] = Figure(LATENCY, "Latency distribution per operating point", "",
                               missing="no raw latency samples are stored for this run")
    trace = next((t for t in power_traces if t.point_id == report.selection.point_id), None)
    if trace is not None and trace.t_s:
        plan[POWER] = Figure(POWER, "Power trace of the chosen point",
                             f"Power per rail from {trace.source}; the shaded band is the measurement window.",
                             files=_files("power"))
    else:
        plan[POWER] = Figure(POWER, "Power trace of the chosen point", "", missing=_power_missing(report))
    if report.cie_gallery_path:
        plan[CIE_GALLERY] = Figure(
            CIE_GALLERY, "CIE audit gallery",
            "The compression-identified exemplars with the most disagreement, with their label and the dense and "
            "compressed modal predictions.", files=(Path(report.cie_gallery_path).name,))
    else:
        plan[CIE_GALLERY] = Figure(CIE_GALLERY, "CIE audit gallery", "",
                                   missing="no CIE gallery was written (no compressed point with CIE examples)")
    if not plots_available():
        plan = {k: f if k == CIE_GALLERY and f.files else replace(f, caption="", files=(), missing=NO_PLOTS)
                for k, f in plan.items()}
    return plan


def plots_available() -> bool:
    """Whether matplotlib (the plots extra) is installed; without it a card has no figures, each saying why."""
    from harness import deps

    return deps.is_available("matplotlib")


# --------------------------------------------------------------------------- drawing


def plot_recall_delta(report: RunReport, path: Path) -> Path:
    """Heatmap of per-class recall deltas (pp): classes x compressed variants at the selection batch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from harness.report.plots import save_figure

    points = _delta_points(report)
    classes = list(report.dataset.class_names)
    runtimes = {p.runtime for p in points}
    labels = [p.variant_name if len(runtimes) == 1 else f"{p.variant_name}\n({p.runtime})" for p in points]
    deltas = [p.accuracy.per_class_delta if p.accuracy is not None else {} for p in points]  # all set: _delta_points
    grid = np.array([[np.nan if (d := delta.get(c)) is None else 100 * d for delta in deltas] for c in classes],
                    dtype=float)
    span = max(1.0, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0)
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(points), 1.4 + 0.32 * len(classes)))
    try:
        cmap = plt.get_cmap("RdBu").with_extremes(bad="#d0d0d0")
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-span, vmax=span, aspect="auto")
        ax.set_xticks(range(len(points)), labels, rotation=30, ha="right", fontsize="small")
        ax.set_yticks(range(len(classes)), classes, fontsize="small")
        if grid.size <= 400:
            for (i, j), v in np.ndenumerate(grid):
                ax.text(j, i, "n/a" if np.isnan(v) else f"{v:+.1f}", ha="center", va="center", fontsize=7,
                        color="black" if np.isnan(v) or abs(v) < 0.6 * span else "white")
        fig.colorbar(image, ax=ax).set_label("recall change vs dense (pp)")
        ax.set_title(f"{report.experiment_name}: per-class recall change at batch {report.selection.batch_size}",
                     fontsize="medium")
        save_figure(fig, path)
        save_figure(fig, path.with_suffix(".svg"))
    finally:
        plt.close(fig)
    return path


def plot_latency_distribution(report: RunReport, samples: Mapping[str, Sequence[float]], path: Path) -> Path:
    """Box plot of the raw per-query latency of each point that has samples, chosen point highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.report.plots import save_figure

    by_id = {p.point_id: p for p in report.points}
    ids = sorted((k for k, v in samples.items() if len(v)), key=lambda k: (sorted(samples[k])[len(samples[k]) // 2], k))
    names = [f"{by_id[k].variant_name} / {by_id[k].runtime} / b{by_id[k].batch_size}" if k in by_id else k for k in ids]
    fig, ax = plt.subplots(figsize=(8.5, 1.2 + 0.42 * len(ids)))
    try:
        major, minor = (int(v) for v in matplotlib.__version__.split(".")[:2])
        horizontal = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
        boxes = ax.boxplot([list(samples[k]) for k in ids], patch_artist=True, widths=0.6,
                           flierprops={"markersize": 2, "alpha": 0.5}, **horizontal)
        for k, box in zip(ids, boxes["boxes"], strict=True):
            box.set_facecolor("#f2b134" if k == report.selection.point_id else "#9db4d3")
        ax.set_yticks(range(1, len(ids) + 1), [n + ("  (chosen)" if k == report.selection.point_id else "")
                                               for k, n in zip(ids, names, strict=True)], fontsize="small")
        values = [v for k in ids for v in samples[k]]
        if min(values) > 0 and max(values) / min(values) > 3:
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("latency per query (ms)")
        ax.set_title(f"{report.experiment_name}: per-query latency, raw samples", fontsize="medium")
        ax.grid(True, axis="x", alpha=0.3)
        save_figure(fig, path)
        save_figure(fig, path.with_suffix(".svg"))
    finally:
        plt.close(fig)
    return path


def plot_power_trace(trace: PowerTrace, path: Path, *, title: str = "") -> Path:
    """Power per rail over time with the measurement window shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.report.plots import save_figure

    t0 = trace.t_s[0]
    fig, ax = plt.subplots(figsize=(8.5, 3.6))
    try:
        ax.axvspan(trace.window_s[0] - t0, trace.window_s[1] - t0, color="#f2b134", alpha=0.25,
                   label="measurement window")
        for rail, watts in sorted(trace.power_w.items()):
            ax.plot([t - t0 for t in trace.t_s], watts, linewidth=1.2, label=rail)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("power (W)")
        ax.set_title(title or f"power trace ({trace.source})", fontsize="medium")
        ax.legend(loc="best", fontsize="small")
        ax.grid(True, alpha=0.3)
        save_figure(fig, path)
        save_figure(fig, path.with_suffix(".svg"))
    finally:
        plt.close(fig)
    return path


def write_figures(
    report: RunReport,
    out_dir: Path,
    plan: Mapping[str, Figure],
    *,
    latency_samples: Mapping[str, Sequence[float]] | None = None,
    power_traces: Sequence[PowerTrace] = (),
) -> dict[str, bytes]:
    """Draw every planned figure into ``out_dir``; return file name -> bytes of each figure file that exists.

    The CIE gallery is not drawn here (it needs the evaluation images); it is read from the
    path the run recorded, when that file still exists.
    """
    from harness.report.plots import plot_front

    out_dir = Path(out_dir)
    if plan[FRONT].files:
        plot_front(report, out_dir / "front.png", svg=True)
    if plan[RECALL_DELTA].files:
        plot_recall_delta(report, out_dir / "recall_delta.png")
    if plan[LATENCY].files:
        plot_latency_distribution(report, latency_samples or {}, out_dir / "latency.png")
    if plan[POWER].files:
        traces = power_traces or recorded_power_traces(report)
        trace = next(t for t in traces if t.point_id == report.selection.point_id)
        plot_power_trace(trace, out_dir / "power.png", title=f"{report.experiment_name}: power of the chosen point")
    images: dict[str, bytes] = {}
    for key, figure in plan.items():
        for name in figure.files:
            path = Path(report.cie_gallery_path) if key == CIE_GALLERY and report.cie_gallery_path else out_dir / name
            if path.is_file():
                images[name] = path.read_bytes()
    return images
