"""A tiny progress interface so the library reports progress without knowing about rich.

The CLI passes a rich-backed reporter (to stderr); tests and library users get the
silent default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Task:
    def advance(self, n: int = 1) -> None:  # noqa: D102 - trivial
        pass

    def update(self, description: str) -> None:  # noqa: D102 - trivial
        pass


class ProgressReporter:
    """Silent reporter; subclasses render ``task`` contexts and ``log`` lines."""

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        yield Task()

    def log(self, message: str) -> None:
        pass
