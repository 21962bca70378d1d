"""One exception tree for the whole library.

The CLI maps every :class:`HarnessError` to a single red line and the exit code
declared on its class (documented in the README). Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""

    exit_code: int = 1
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(HarnessError):
    """An experiment file or flag is wrong: unknown key, wrong type, impossible value."""

    exit_code = 2


class ParseError(ConfigError, ValueError):
    """A small-grammar string (objective, constraint, weight) is malformed; the message names it.

    Also a ``ValueError`` so pydantic validators report it against the offending key.
    """


class UnknownNameError(ConfigError):
    """A registry lookup failed (dataset, model, pruner, runtime ...)."""


class MissingDependency(HarnessError):
    """An optional library is not installed; with ``extra``, the one-line message names its ``pip install``."""

    exit_code = 3

    def __init__(self, package: str, *, extra: str | None = None, purpose: str = "") -> None:
        if extra:  # one line that names the install: "Parquet export needs pyarrow (the parquet extra): pip install ..."
            super().__init__(f"{purpose or 'this command'} needs {package} (the {extra} extra): "
                             f"pip install 'harness[{extra}]'")
        else:
            what = f" (needed for {purpose})" if purpose else ""
            super().__init__(f"{package} is not installed{what}", hint=f"pip install {package}")
        self.package = package
        self.extra = extra


class DeviceUnavailable(HarnessError):
    """The requested hardware (GPU, meter, board) is not present."""

    exit_code = 4


class InputError(HarnessError):
    """User-supplied data or model is unusable: corrupt file, wrong shape, bad labels."""

    exit_code = 5


class VariantError(HarnessError):
    """One variant failed to compress, export, quantize or run.

    The pipeline records it against the operating point and goes on with the sweep.
    """

    exit_code = 6

    def __init__(self, variant_id: str, stage: str, message: str) -> None:
        super().__init__(f"variant {variant_id} failed at {stage}: {message}")
        self.variant_id = variant_id
        self.stage = stage
        self.detail = message


class MeasurementError(HarnessError):
    """A measurement could not be completed (the measuring process crashed, timed out ...)."""

    exit_code = 6


class StoreError(HarnessError):
    """The results store cannot be opened or written."""

    exit_code = 7


class FileAccessError(HarnessError):
    """A file or folder cannot be read or written (permission denied, disk full, a file where a folder
    should be): an ``OSError`` no layer below turned into a more specific error, named with its path."""

    exit_code = 7

    @classmethod
    def from_os_error(cls, exc: OSError) -> FileAccessError:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, FileExistsError | NotADirectoryError):
            reason += " (a file is where a folder should be)"
        paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
        return cls(f"{' -> '.join(paths)}: {reason}" if paths else reason)


#: exit code when the run completed but some operating points failed (recorded in the store)
EXIT_SOME_POINTS_FAILED = 6
