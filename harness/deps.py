"""Probes for optional dependencies, without importing them, and the extra that installs each.

The base install (CLI, store, fleet worker, measurement, runtime dispatch, metrics, selection,
cards without figures) needs none of the modules in :data:`EXTRAS`; a feature that does calls
:func:`require` at its boundary, which raises :class:`~harness.errors.MissingDependency` (exit
code 3) naming the ``pip install`` line.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import cache

from harness.errors import MissingDependency

#: importable module -> (its distribution on PyPI, the harness extra that installs it). The cuda extra
#: installs onnxruntime-gpu, which provides the same ``onnxruntime`` module as the cpu extra's build.
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "build"),
    "torch_pruning": ("torch-pruning", "build"),
    "onnxscript": ("onnxscript", "build"),
    "sklearn": ("scikit-learn", "build"),
    "matplotlib": ("matplotlib", "plots"),
    "onnxruntime": ("onnxruntime", "cpu"),
    "pynvml": ("nvidia-ml-py", "cuda"),
    "openvino": ("openvino", "openvino"),
    "pyarrow": ("pyarrow", "parquet"),
    "psycopg": ("psycopg", "postgres"),
    "triton": ("triton", "kernels"),
}


@cache
def is_available(module: str) -> bool:
    """True when ``module`` can be found on the path (it is not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_line(extra: str) -> str:
    return f"pip install 'harness[{extra}]'"


def missing(module: str, extra: str | None = None, what: str = "this command", *,
            package: str | None = None) -> MissingDependency:
    """The error for ``module`` being absent when ``what`` needs it (``extra``: default from :data:`EXTRAS`)."""
    known = EXTRAS.get(module.split(".")[0])
    return MissingDependency(package or (known[0] if known else module), extra=extra or (known[1] if known else None),
                             purpose=what)


def require(module: str, extra: str | None = None, what: str = "this command", *, package: str | None = None) -> None:
    """Raise :class:`MissingDependency` (exit code 3) when ``module`` is absent: one line,
    ``"<what> needs <package> (the <extra> extra): pip install 'harness[<extra>]'"``."""
    if not is_available(module):
        raise missing(module, extra, what, package=package)


def missing_from_import(exc: ImportError, what: str) -> MissingDependency | None:
    """The :class:`MissingDependency` for an import that failed because a module of :data:`EXTRAS` is
    absent (``exc.name`` is it or one of its submodules), else None."""
    name = getattr(exc, "name", None) or ""
    if not isinstance(exc, ModuleNotFoundError) or name.split(".")[0] not in EXTRAS:
        return None
    return missing(name.split(".")[0], what=what)


def version_of(distribution: str) -> str | None:
    """Installed version of a distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
