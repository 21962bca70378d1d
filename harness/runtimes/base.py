"""The Runner contract (after Polygraphy): load in ``with``, ``infer`` a batch, never time itself.

Scenarios time every runtime the same way; a runner only loads its artifact and maps
an N x C x H x W float32 batch to N x classes logits. Subclasses fill the ``*_impl`` hooks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from harness.errors import InputError


class Runner(ABC):
    name: ClassVar[str]
    artifact_format: ClassVar[str]  # which exported file this runtime executes
    description: ClassVar[str]

    def __init__(self, artifact: Path, *, threads: int | None = None) -> None:
        self.artifact = Path(artifact)
        self.threads = threads
        self._active = False
        self._input_shape: tuple[int, ...] | None = None

    def __enter__(self) -> Runner:
        if not self.artifact.exists():
            raise InputError(f"{self.name}: artifact not found: {self.artifact}")
        self.activate_impl()
        self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._active = False
        self.deactivate_impl()

    def set_input_shape(self, chw: tuple[int, ...]) -> None:
        """Declare the per-sample shape; ``infer`` then rejects anything else with a clear error."""
        self._input_shape = tuple(chw)

    def infer(self, x: np.ndarray) -> np.ndarray:
        if not self._active:
            raise RuntimeError(f"{self.name} runner used outside its `with` block")
        if self._input_shape is not None and tuple(x.shape[1:]) != self._input_shape:
            raise InputError(f"{self.name}: input shape {tuple(x.shape[1:])} does not match {self._input_shape}")
        return self.infer_impl(x)

    def evaluation_batch(self, preferred: int) -> tuple[int, bool]:
        """The batch to score the evaluation split with, and whether a short last chunk must be padded.

        Most runtimes take any batch. An engine built with static profiles takes only its profiled
        batch sizes: it scores at the largest, padding the last chunk, so the kernels scored are
        the ones timed.
        """
        return preferred, False

    @abstractmethod
    def activate_impl(self) -> None: ...

    @abstractmethod
    def infer_impl(self, x: np.ndarray) -> np.ndarray: ...

    def deactivate_impl(self) -> None:
        return None
