"""One place for terminal output: progress and logs on stderr, data on stdout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from harness.metric_catalog import format_value, read_metrics
from harness.progress import ProgressReporter, Task

#: the width of a stream that is not a terminal (a pipe, a file): tables print at their natural width,
#: so ids and names are never cut or ellipsized (rich would assume 80 columns there)
PIPED_WIDTH = 100_000
stderr = Console(stderr=True, width=None if Console(stderr=True).is_terminal else PIPED_WIDTH)
stdout = Console(width=None if Console().is_terminal else PIPED_WIDTH)

#: columns holding ids and names: in a narrow terminal they fold onto the next line, never ellipsized
ID_COLUMNS = frozenset({"point", "point_id", "run_id", "variant_name", "variant_id", "experiment", "chosen_point", "group"})


def printable(value: object, *, lines: bool = False) -> str:
    """``value`` as text safe for a terminal: control characters (escape sequences, carriage returns ...)
    are shown escaped, e.g. ``\\x1b``; ``lines`` keeps newlines and tabs."""
    text = str(value)
    keep = "\n\t" if lines else ""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else c.encode("unicode_escape").decode("ascii") for c in text)


def plain(value: object, *, lines: bool = False, style: str = "") -> Text:
    """User text (names, labels, paths, run ids, messages quoting them) for rich: never read as markup
    or emoji codes, control characters escaped. Use it for every table cell and title, and print
    user strings as ``console.print(plain(...))``."""
    return Text(printable(value, lines=lines), style=style)


def error_line(message: str, hint: str | None = None) -> None:
    stderr.print(Text.assemble(("error:", "bold red"), " ", plain(message, lines=True)), soft_wrap=True)
    if hint:
        stderr.print(plain(f"hint: {hint}", lines=True, style="dim"))


class _RichTask(Task):
    def __init__(self, progress: Progress, task_id) -> None:
        self._progress, self._id = progress, task_id

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._id, n)

    def update(self, description: str) -> None:
        self._progress.update(self._id, description=printable(description))


class RichProgress(ProgressReporter):
    """Progress bars on stderr, so ``--json`` keeps stdout clean."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),  # descriptions name user models and datasets
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
        description = printable(description)
        task_id = self._progress.add_task(description, total=total)
        try:
            yield _RichTask(self._progress, task_id)
        finally:
            self._progress.update(task_id, description=description)
            self._progress.stop_task(task_id)

    def log(self, message: str) -> None:
        self._progress.console.print(plain(message, lines=True))


def metric_cell(name: str, value: float | None) -> str:
    """A metric's value in a CLI table: the catalog's one format (fractions as ``98.1%``, differences of
    fractions as ``-1.2 pp``, times as ``0.496 ms``, ``n/a`` when missing), the same as reasons and the card."""
    return format_value(name, value)


def points_table(report) -> Table:
    """Operating points grouped by batch size; ``*`` marks the chosen point, ``front`` the Pareto front."""
    table = Table(title=plain(f"run {report.run_id}: operating points (* chosen)"), title_justify="left")
    for col in ["point", "prec", "sparsity", "top-1", "worst class", "p50", "p99", "RSS MB", "file MB", "front", "status"]:
        table.add_column(col, justify="left" if col in ("point", "prec", "status") else "right",
                         overflow="fold" if col in ID_COLUMNS else "ellipsis")
    chosen = report.selection.point_id
    for p in sorted(report.points, key=lambda p: (p.batch_size, p.runtime, p.point_id)):
        acc = p.accuracy
        m = read_metrics(p)
        table.add_row(
            plain(p.point_id + (" *" if p.point_id == chosen else "")),
            plain(p.precision),
            metric_cell("sparsity", m["sparsity"]),
            metric_cell("top1", m["top1"]),
            plain(f"{metric_cell('worst_class_recall', m['worst_class_recall'])} ({acc.worst_class})") if acc else "n/a",
            metric_cell("p50_ms", m["p50_ms"]),
            metric_cell("p99_ms", m["p99_ms"]),
            metric_cell("peak_rss_mb", m["peak_rss_mb"]),
            metric_cell("artifact_mb", m["artifact_mb"]),
            "yes" if p.on_pareto_front else "",
            p.status if p.status == "ok" else plain(f"failed: {((p.error or '').splitlines() or [''])[0][:70]}"),
        )
    return table
