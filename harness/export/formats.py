"""Artifact formats: one table of what each exported file is and how it is read.

A format is a name (``Runner.artifact_format``, the keys of ``BuiltVariant.files``,
``ArtifactInfo.format``) and one :class:`ArtifactFormat` row: the file a variant's cache
directory keeps it in, how it is inspected, loaded and weighed, whether it is an ONNX graph
(the ONNX-only readers, e.g. the sparse-weight size, apply) and whether a TensorRT engine
is built from it. Functions are lazy ``"module:attr"`` targets,
so reading the table imports neither onnx nor torch. Adding a format is one ``FORMATS.add`` line.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UnknownNameError


def _resolve(target: str) -> Any:
    module, attr = target.split(":", 1)
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class ArtifactFormat:
    """One artifact format. ``inspector(path, fmt) -> ArtifactInfo``, ``loader(path) -> object``,
    ``weights_reader(path) -> MiB of stored weights``, each a ``"module:attr"`` target or None."""

    name: str
    file_name: str | None  # in a variant's cache directory; None: built on the measuring device, not cached there
    inspector: str | None = None
    loader: str | None = None
    weights_reader: str | None = None
    onnx_family: bool = False  # an ONNX graph: onnx.load reads it
    engine_source: bool = False  # a TensorRT engine can be built from it
    tensorrt_quantized: bool = False  # quantized for TensorRT's Q/DQ placement: the preferred engine source

    @property
    def built_on_device(self) -> bool:
        """Not kept with the variant: made on the measuring device from another format (a TensorRT engine)."""
        return self.file_name is None

    def inspect(self, path: Path):
        """The :class:`~harness.records.ArtifactInfo` of a file of this format."""
        if self.inspector is None:
            raise ValueError(f"{self.name} artifacts have no inspector")
        return _resolve(self.inspector)(Path(path), self.name)

    def load(self, path: Path) -> Any:
        if self.loader is None:
            raise ValueError(f"{self.name} artifacts have no loader")
        return _resolve(self.loader)(Path(path))

    def weights_mb(self, path: Path) -> float:
        """MiB of the weights stored in a file of this format (raises when it has no reader or cannot be read)."""
        if self.weights_reader is None:
            raise ValueError(f"weights are not read from {self.name} artifacts")
        return _resolve(self.weights_reader)(Path(path))


class FormatTable:
    """Artifact formats by name, in the order they were added."""

    def __init__(self) -> None:
        self._formats: dict[str, ArtifactFormat] = {}

    def add(self, fmt: ArtifactFormat) -> None:
        if fmt.name in self._formats and self._formats[fmt.name] != fmt:
            raise ValueError(f"artifact format {fmt.name!r} is already defined")
        self._formats[fmt.name] = fmt

    def remove(self, name: str) -> None:
        self._formats.pop(name, None)

    def __getitem__(self, name: str) -> ArtifactFormat:
        if name not in self._formats:
            raise UnknownNameError(f"unknown artifact format {name!r}; known: {', '.join(self._formats)}")
        return self._formats[name]

    def get(self, name: str) -> ArtifactFormat | None:
        return self._formats.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._formats

    def __iter__(self) -> Iterator[ArtifactFormat]:
        return iter(list(self._formats.values()))

    def names(self) -> list[str]:
        return list(self._formats)

    def files(self) -> dict[str, str]:
        """Format -> file name, for the formats kept in a variant's cache directory."""
        return {f.name: f.file_name for f in self if f.file_name is not None}


FORMATS = FormatTable()
FORMATS.add(ArtifactFormat("torch.export", "model.pt2", inspector="harness.export.inspect:inspect_program",
                           loader="harness.export.pt2:load_program", weights_reader="harness.export.pt2:program_weights_mb"))
FORMATS.add(ArtifactFormat("onnx", "model.onnx", inspector="harness.export.inspect:inspect_onnx",
                           weights_reader="harness.export.onnx:onnx_weights_mb", onnx_family=True, engine_source=True))
FORMATS.add(ArtifactFormat("onnx-trt-qdq", "model.trt-qdq.onnx", inspector="harness.export.inspect:inspect_onnx",
                           weights_reader="harness.export.onnx:onnx_weights_mb", onnx_family=True, engine_source=True,
                           tensorrt_quantized=True))
FORMATS.add(ArtifactFormat("tensorrt-engine", None))  # its ArtifactInfo is its source ONNX's, built with the engine


def is_onnx(fmt: str, path: Path | None = None) -> bool:
    """Whether ``fmt`` is an ONNX-family format, or ``path`` an ``.onnx`` file."""
    known = FORMATS.get(fmt)
    return bool(known and known.onnx_family) or (path is not None and Path(path).suffix == ".onnx")


def inspect_artifact(path: Path, fmt: str):
    """The :class:`~harness.records.ArtifactInfo` of ``path``, read as format ``fmt``."""
    return FORMATS[fmt].inspect(path)
