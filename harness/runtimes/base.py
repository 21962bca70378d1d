"""The Runner contract (after Polygraphy): load in ``with``, ``infer`` a batch, never time itself.

Scenarios time every runtime the same way; a runner only loads its artifact and maps
an N x C x H x W float32 batch to N x classes logits. Subclasses fill the ``*_impl`` hooks.

Each runner class declares, as class attributes, what the harness needs to know without
loading anything:

* ``name``: its key in :data:`harness.runtimes.RUNTIMES` (``runtimes = [...]`` in a config);
* ``artifact_format``: the exported file it executes, a key of
  :data:`harness.export.formats.FORMATS`;
* ``device_kind``: ``"cpu"`` or ``"cuda"`` (an NVIDIA GPU: NVML readings, GPU clock locking,
  meters offered to GPU runtimes);
* ``capabilities``: a :class:`RunnerCapabilities` naming the optional hooks it fills;
* ``requires``: ``(module, extra)`` pairs it imports when it loads, each installed by that harness
  extra (:meth:`Runner.require_installed` raises exit code 3 with the ``pip install`` line);
* :meth:`Runner.unavailable_reason`: ``None`` when this host can run it, else one line saying
  why not (a missing library, no CUDA device), without loading an artifact.

The measuring worker reads only these declarations; it never probes a runner's attributes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from harness.errors import InputError

if TYPE_CHECKING:
    from harness.measure.gpu_timing import Pipelined

DeviceKind = Literal["cpu", "cuda"]
DEVICE_KINDS: tuple[DeviceKind, ...] = ("cpu", "cuda")


@dataclass(frozen=True)
class RunnerCapabilities:
    """The optional hooks a runner fills; each ``True`` names a method or attribute it overrides.

    * ``gpu_timing``: after every :meth:`Runner.infer`, ``last_timing_ms`` holds that query's
      ``enqueue_ms`` / ``h2d_ms`` / ``compute_ms`` / ``d2h_ms`` from CUDA events;
    * ``pipelined_throughput``: :meth:`Runner.pipelined_throughput` keeps several queries in flight;
    * ``cuda_graphs``: the forward pass is a captured CUDA graph, replayed (recorded with the GPU timing);
    * ``activation_memory``: :meth:`Runner.activation_memory` gives the runtime's own activation /
      workspace figure once active;
    * ``peak_gpu_memory``: :meth:`Runner.peak_gpu_mb` gives the GPU allocator's peak once active.
    """

    gpu_timing: bool = False
    pipelined_throughput: bool = False
    cuda_graphs: bool = False
    activation_memory: bool = False
    peak_gpu_memory: bool = False


#: capability -> the Runner method a class declaring it must override
_CAPABILITY_METHODS = {
    "pipelined_throughput": "pipelined_throughput",
    "activation_memory": "activation_memory",
    "peak_gpu_memory": "peak_gpu_mb",
}


class Runner(ABC):
    name: ClassVar[str]
    artifact_format: ClassVar[str]  # which exported file this runtime executes (a key of FORMATS)
    description: ClassVar[str]
    device_kind: ClassVar[DeviceKind] = "cpu"
    capabilities: ClassVar[RunnerCapabilities] = RunnerCapabilities()
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()  # (module, harness extra that installs it)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.device_kind not in DEVICE_KINDS:
            raise TypeError(f"{cls.__name__}.device_kind must be one of {DEVICE_KINDS}, got {cls.device_kind!r}")
        for capability, method in _CAPABILITY_METHODS.items():
            if getattr(cls.capabilities, capability) and getattr(cls, method) is getattr(Runner, method):
                raise TypeError(f"{cls.__name__} declares the {capability} capability but does not override {method}()")

    def __init__(self, artifact: Path, *, threads: int | None = None) -> None:
        self.artifact = Path(artifact)
        self.threads = threads
        self._active = False
        self._input_shape: tuple[int, ...] | None = None
        self.last_timing_ms: dict[str, float] | None = None  # filled after each query when capabilities.gpu_timing

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """``None`` when this host can run the runtime, else one line saying why not. Loads no artifact."""
        return None

    @classmethod
    def require_installed(cls) -> None:
        """Raise :class:`~harness.errors.MissingDependency` (exit code 3, naming the ``pip install``
        line) for the first module of ``requires`` that is not installed."""
        from harness import deps

        for module, extra in cls.requires:
            deps.require(module, extra, f"the {cls.name} runtime")

    def __enter__(self) -> Runner:
        self.require_installed()
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

    def pipelined_throughput(self, x: np.ndarray, rule: Any) -> Pipelined:
        """Queries finished with several in flight (``capabilities.pipelined_throughput``)."""
        raise NotImplementedError(f"{self.name} has no pipelined mode")

    def activation_memory(self) -> tuple[float | None, str | None]:
        """The runtime's own activation/workspace figure in MiB, or ``(None, reason)``
        (``capabilities.activation_memory``)."""
        return None, None

    def peak_gpu_mb(self) -> float | None:
        """Peak MiB held by the runtime's GPU allocator (``capabilities.peak_gpu_memory``)."""
        return None

    @abstractmethod
    def activate_impl(self) -> None: ...

    @abstractmethod
    def infer_impl(self, x: np.ndarray) -> np.ndarray: ...

    def deactivate_impl(self) -> None:
        return None


def missing_modules_reason(*modules: str, extra: str | None = None) -> str | None:
    """``"<module> is not installed (pip install 'harness[<extra>]')"`` for the first of ``modules`` not
    found on the path, else None; ``extra`` defaults to the one :data:`harness.deps.EXTRAS` names."""
    from harness import deps

    for module in modules:
        if not deps.is_available(module):
            known = extra or deps.EXTRAS.get(module, ("", ""))[1]
            return f"{module} is not installed ({deps.install_line(known)})" if known else f"{module} is not installed"
    return None


def torch_cuda_reason(torch_module: Any = None) -> str | None:
    """Why torch cannot run on a CUDA device here (not installed, a CPU-only build, no GPU), else None."""
    if torch_module is None:
        missing = missing_modules_reason("torch")
        if missing:
            return missing
        import torch as torch_module
    if not torch_module.cuda.is_available():
        build = ("a CPU-only build" if torch_module.version.cuda is None else f"CUDA {torch_module.version.cuda}")
        return f"torch sees no CUDA device ({build} of torch {torch_module.__version__})"
    return None
