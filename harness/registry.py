"""Name -> implementation registries with lazy ``"module:attr"`` targets.

Registering a runtime, pruner or meter is one line; nothing is imported until the
entry is used, so listing what exists never pulls in torch or onnxruntime.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from harness.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of lazily imported objects (classes or functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._targets: dict[str, str] = {}
        self._loaded: dict[str, T] = {}

    def register(self, name: str, target: str) -> None:
        if ":" not in target:
            raise ValueError(f"{self.kind} target must look like 'module:attr', got {target!r}")
        if name in self._targets and self._targets[name] != target:
            raise ValueError(f"{self.kind} {name!r} is already registered to {self._targets[name]}")
        self._targets[name] = target

    def unregister(self, name: str) -> None:
        """Remove ``name`` (and its loaded object); a name that is not registered is ignored."""
        self._targets.pop(name, None)
        self._loaded.pop(name, None)

    @contextmanager
    def temporarily(self, name: str, target: str) -> Iterator[None]:
        """``name`` registered to ``target`` inside the ``with`` block only (tests, plugins tried out)."""
        self.register(name, target)
        try:
            yield
        finally:
            self.unregister(name)

    def names(self) -> list[str]:
        return sorted(self._targets)

    def in_order(self) -> list[str]:
        """The names in the order they were registered."""
        return list(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def check(self, name: str) -> None:
        """Raise :class:`UnknownNameError` with a suggestion if ``name`` is not registered."""
        if name in self._targets:
            return
        close = difflib.get_close_matches(name, self._targets, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}; {hint}known: {', '.join(self.names())}"
        )

    def get(self, name: str) -> T:
        self.check(name)
        if name not in self._loaded:
            module_name, attr = self._targets[name].split(":", 1)
            self._loaded[name] = getattr(importlib.import_module(module_name), attr)
        return self._loaded[name]
