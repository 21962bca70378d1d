"""The ``harness`` command line: parse -> spec -> one library call -> render.

Every :class:`~harness.errors.HarnessError` becomes one red line on stderr and the
exit code declared on its class (see the README); so does an import of a module that an
extra installs (exit code 3, naming the ``pip install`` line); anything else is a bug and
keeps its traceback (also shown for every error with ``HARNESS_DEBUG=1``).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Protocol, cast

import typer

from harness.cli.bench import EXAMPLES as BENCH_EXAMPLES
from harness.cli.bench import bench_command
from harness.cli.fleet import submit_command, worker_command
from harness.cli.inspect import inspect_command
from harness.cli.pareto import card_command, pareto_command
from harness.cli.results import results_app
from harness.cli.run import EXAMPLES, run_command
from harness.cli.targets import targets_app
from harness.cli.train import EXAMPLES as TRAIN_EXAMPLES
from harness.cli.train import train_command

app = typer.Typer(
    name="harness",
    no_args_is_help=True,
    add_completion=False,
    # plain click help: a flag is listed without a type placeholder (the rich panels print `<bool>` for it)
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Choose how to ship a compressed image classifier without silently hurting the people it serves.",
)
app.command("run", epilog=EXAMPLES, short_help="Run an experiment end to end (no argument: the embedded default).")(run_command)
app.command("train", epilog=TRAIN_EXAMPLES, short_help="Train a model (or K seeds) on a dataset; write checkpoints.")(train_command)
app.add_typer(results_app, name="results")
app.command("inspect", short_help="What an ONNX or .pt2 file holds: tensors, ops; ONNX layers: sparsity, 2:4, int8, MACs.")(inspect_command)
app.add_typer(targets_app, name="targets")
app.command("submit", short_help="Queue an experiment's jobs for a fleet of devices sharing one store.")(submit_command)
app.command("worker", short_help="Run this device's queued jobs from the shared store.")(worker_command)
app.command("pareto", short_help="The Pareto front of stored runs over any metrics.")(pareto_command)
app.command("card", short_help="Re-render a run's model card from the store.")(card_command)
app.command("bench", epilog=BENCH_EXAMPLES, short_help="Time one .onnx, .pt2 or TensorRT engine file (no accuracy).")(bench_command)


def installed_version() -> str:
    """The installed distribution's version (``importlib.metadata``), else the package's own."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("harness")
    except PackageNotFoundError:
        from harness import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"harness {installed_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."),
    ] = False,
) -> None:
    """Prune, quantize, export, measure and evaluate a model; pick a fair operating point."""


class _ClickException(Protocol):  # what main() uses of click's ClickException
    exit_code: int

    def show(self) -> None: ...


def _click_exception() -> type[Exception]:
    """``ClickException`` as typer raises it: click's own in older typer releases, typer's vendored
    copy in typer 0.29 (which no longer installs click). Found through the public ``typer.BadParameter``."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _command_name() -> str:
    """``harness <command>`` as invoked (the first argument that is not an option)."""
    words = [a for a in sys.argv[1:] if not a.startswith("-")][:1]
    return " ".join(["harness", *words])


def main() -> None:
    from harness.errors import HarnessError

    try:
        # without standalone mode click returns a command's exit code (typer.Exit) instead of exiting
        code = app(standalone_mode=False)
    except HarnessError as exc:
        if os.environ.get("HARNESS_DEBUG"):
            raise
        from harness.cli._output import error_line

        error_line(str(exc), exc.hint)
        sys.exit(exc.exit_code)
    except ModuleNotFoundError as exc:  # a module an extra installs (deps.EXTRAS): exit code 3 with its pip line
        from harness.deps import missing_from_import

        missing = missing_from_import(exc, _command_name())
        if missing is None or os.environ.get("HARNESS_DEBUG"):
            raise
        from harness.cli._output import error_line

        error_line(str(missing))
        sys.exit(missing.exit_code)
    except OSError as exc:  # a file the harness could not read or write: one line with its path and the reason
        if os.environ.get("HARNESS_DEBUG"):
            raise
        from harness.cli._output import error_line
        from harness.errors import FileAccessError

        error = FileAccessError.from_os_error(exc)
        error_line(str(error))
        sys.exit(error.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except _click_exception() as exc:  # usage errors (unknown option, bad value) carry their own exit code
        usage = cast(_ClickException, exc)
        usage.show()
        sys.exit(usage.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
