"""Probes for optional dependencies, without importing them."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import cache

from harness.errors import MissingDependency


@cache
def is_available(module: str) -> bool:
    """True when ``module`` can be found on the path (it is not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, *, package: str | None = None, extra: str | None = None, purpose: str = "") -> None:
    """Raise :class:`MissingDependency` with the install command when ``module`` is absent."""
    if not is_available(module):
        raise MissingDependency(package or module, extra=extra, purpose=purpose)


def version_of(distribution: str) -> str | None:
    """Installed version of a distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
