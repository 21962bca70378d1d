"""One place for terminal output: progress and logs on stderr, data on stdout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.progress import ProgressReporter, Task

# wide enough for the points table when output is piped (rich assumes 80 columns then)
stderr = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 140)
stdout = Console(width=None if Console().is_terminal else 140)


def error_line(message: str, hint: str | None = None) -> None:
    stderr.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    if hint:
        stderr.print(f"[dim]hint: {hint}[/]", highlight=False)


class _RichTask(Task):
    def __init__(self, progress: Progress, task_id) -> None:
        self._progress, self._id = progress, task_id

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._id, n)

    def update(self, description: str) -> None:
        self._progress.update(self._id, description=description)


class RichProgress(ProgressReporter):
    """Progress bars on stderr, so ``--json`` keeps stdout clean."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        task_id = self._progress.add_task(description, total=total)
        try:
            yield _RichTask(self._progress, task_id)
        finally:
            self._progress.update(task_id, description=description)
            self._progress.stop_task(task_id)

    def log(self, message: str) -> None:
        self._progress.console.print(message, highlight=False, markup=False)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def points_table(report) -> Table:
    """Operating points grouped by batch size; ``*`` marks the chosen point, ``front`` the Pareto front."""
    table = Table(title=f"run {report.run_id}: operating points (* chosen)", title_justify="left")
    for col in ["point", "prec", "sparsity %", "top-1 %", "worst class %", "p50 ms", "p99 ms", "RSS MB", "file MB", "front", "status"]:
        table.add_column(col, justify="left" if col in ("point", "prec", "status") else "right", no_wrap=col == "point")
    chosen = report.selection.point_id
    for p in sorted(report.points, key=lambda p: (p.batch_size, p.runtime, p.point_id)):
        acc, lat, mem, art = p.accuracy, p.latency, p.memory, p.artifact
        table.add_row(
            p.point_id + (" *" if p.point_id == chosen else ""),
            p.precision,
            _pct(art.weight_sparsity) if art else "n/a",
            _pct(acc.top1) if acc else "n/a",
            f"{_pct(acc.worst_class_recall)} ({acc.worst_class})" if acc else "n/a",
            _ms(lat.p50_ms) if lat else "n/a",
            _ms(lat.p99_ms) if lat else "n/a",
            f"{mem.peak_rss_mb:.0f}" if mem and mem.peak_rss_mb is not None else "n/a",
            f"{art.file_mb:.3f}" if art else "n/a",
            "yes" if p.on_pareto_front else "",
            p.status if p.status == "ok" else f"failed: {(p.error or '').splitlines()[0][:70]}",
        )
    return table
