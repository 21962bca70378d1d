"""The operating-point plot: latency against top-1, coloured by worst-class recall.

matplotlib is imported inside :func:`plot_front` (Agg backend), so importing this module
costs nothing and needs no display.
"""

from __future__ import annotations

from pathlib import Path

from harness.records import OperatingPoint, RunReport

#: marker per runtime, in sorted runtime order; "*" is kept for the chosen point
_RUNTIME_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]
_LOG_SPAN = 10.0  # log x axis when max / min latency exceeds this


def _plottable(report: RunReport, batch_size: int) -> list[OperatingPoint]:
    return [
        p
        for p in report.points
        if p.status == "ok" and p.batch_size == batch_size and p.latency is not None and p.accuracy is not None
    ]


def plot_front(report: RunReport, path: Path, *, batch_size: int | None = None, svg: bool = False) -> Path:
    """Write a PNG (or SVG, by ``path``'s suffix) of the operating points at one batch size; return its path.

    x: p50 latency (ms; log scale when the points span more than 10x), y: top-1 (%),
    colour: worst-class recall (%), marker: runtime. Pareto-front points are outlined and
    connected; the chosen point is a star, and the accuracy-only pick is ringed when it differs.
    Points that failed or have no latency are left out. ``svg=True`` also writes the SVG beside it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    path = Path(path)
    batch = report.selection.batch_size if batch_size is None else batch_size
    points = _plottable(report, batch)
    x = {p.point_id: p.latency.p50_ms for p in points}  # type: ignore[union-attr]
    y = {p.point_id: 100 * p.accuracy.top1 for p in points}  # type: ignore[union-attr]
    c = {p.point_id: 100 * p.accuracy.worst_class_recall for p in points}  # type: ignore[union-attr]

    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    try:
        handles: list[Line2D] = []
        if not points:
            ax.text(0.5, 0.5, f"no completed point with a latency at batch {batch}", ha="center", va="center",
                    transform=ax.transAxes)
        else:
            lo, hi = min(c.values()), max(c.values())
            norm = Normalize(vmin=lo - 0.5, vmax=hi + 0.5) if hi - lo < 1e-9 else Normalize(vmin=lo, vmax=hi)
            cmap = plt.get_cmap("viridis")
            runtimes = sorted({p.runtime for p in points})
            for i, runtime in enumerate(runtimes):
                marker = _RUNTIME_MARKERS[i % len(_RUNTIME_MARKERS)]
                group = [p for p in points if p.runtime == runtime]
                ax.scatter(
                    [x[p.point_id] for p in group],
                    [y[p.point_id] for p in group],
                    c=[cmap(norm(c[p.point_id])) for p in group],
                    marker=marker,
                    s=[90 if p.on_pareto_front else 55 for p in group],
                    edgecolors=["black" if p.on_pareto_front else "none" for p in group],
                    linewidths=1.4,
                    zorder=3,
                )
                handles.append(Line2D([], [], marker=marker, linestyle="", color="grey", label=runtime))
            handles += _draw_front(ax, points, x, y)
            handles += _draw_choices(ax, report, x, y, {pid: cmap(norm(v)) for pid, v in c.items()})
            colorbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax)
            colorbar.set_label("worst-class recall (%)")
            values = list(x.values())
            if min(values) > 0 and max(values) / min(values) > _LOG_SPAN:
                from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

                ax.set_xscale("log")
                # 1-2-5 ticks labelled as plain numbers; unlabelled minor ticks never collide
                ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.margins(0.12)
            ax.legend(handles=handles, loc="best", fontsize="small")
        ax.set_xlabel("p50 latency per query (ms)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(
            f"{report.experiment_name}: operating points at batch {batch}\n"
            f"Pareto front over {', '.join(report.objectives) or 'no objectives'}",
            fontsize="medium",
        )
        ax.grid(True, alpha=0.3)
        save_figure(fig, path)
        if svg:
            save_figure(fig, path.with_suffix(".svg"))
    finally:
        plt.close(fig)
    return path


def save_figure(fig, path: Path) -> Path:
    """Save as PNG or SVG by suffix; SVG without a date and with fixed ids, so reruns are byte-stable."""
    import matplotlib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".svg":
        with matplotlib.rc_context({"svg.hashsalt": "harness", "svg.fonttype": "path"}):
            fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
    else:
        fig.savefig(path, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    return path


def _draw_front(ax, points: list[OperatingPoint], x: dict[str, float], y: dict[str, float]) -> list:
    from matplotlib.lines import Line2D

    front = sorted((p for p in points if p.on_pareto_front), key=lambda p: (x[p.point_id], -y[p.point_id]))
    if not front:
        return []
    ax.plot([x[p.point_id] for p in front], [y[p.point_id] for p in front], color="black", linewidth=1,
            linestyle="--", zorder=2)
    return [Line2D([], [], color="black", linestyle="--", marker="o", markerfacecolor="none",
                   label="Pareto front (outlined)")]


def _draw_choices(ax, report: RunReport, x: dict[str, float], y: dict[str, float], colour: dict[str, tuple]) -> list:
    from matplotlib.lines import Line2D

    sel = report.selection
    by_id = {p.point_id: p for p in report.points}
    handles = []
    acc_id = sel.accuracy_only_point_id
    if acc_id is not None and acc_id != sel.point_id and acc_id in x:
        ax.scatter([x[acc_id]], [y[acc_id]], s=320, facecolors="none", edgecolors="tab:red", linewidths=2,
                   zorder=4)
        ax.annotate("accuracy-only pick", (x[acc_id], y[acc_id]), textcoords="offset points", xytext=(10, -16),
                    fontsize="small", color="tab:red")
        handles.append(Line2D([], [], marker="o", linestyle="", markersize=12, markerfacecolor="none",
                              markeredgecolor="tab:red", label="accuracy-only pick"))
    if sel.point_id is not None and sel.point_id in x:
        chosen = by_id[sel.point_id]
        ax.scatter([x[sel.point_id]], [y[sel.point_id]], marker="*", s=420, facecolors=[colour[sel.point_id]],
                   edgecolors="black", linewidths=1.6, zorder=5)
        ax.annotate(f"chosen: {chosen.variant_name} ({chosen.runtime})", (x[sel.point_id], y[sel.point_id]),
                    textcoords="offset points", xytext=(10, 8), fontsize="small", fontweight="bold")
        handles.append(Line2D([], [], marker="*", linestyle="", markersize=14, markerfacecolor="grey",
                              markeredgecolor="black", label="chosen"))
    return handles
