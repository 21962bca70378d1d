"""Loading ``.pt2`` files (``torch.export`` programs) without running code from them.

``torch.export.load`` unpickles parts of an archive with ``weights_only=False``: a weight or
constant flagged ``use_pickle``, ``opaque_obj_*`` constants (plain ``pickle.loads``), sample inputs
that fail the weights-only loader (it falls back), the pre-2.8 zip layout, and it loads the native
libraries of AOTInductor packages. Any of these runs code the file's author chose.

:func:`check_archive` reads the zip's members first and accepts only what deserialises without
pickle: JSON graphs and payload configs, raw tensor payloads, and sample inputs that load with
``torch.load(weights_only=True)`` (never retried otherwise). Anything else refuses the file with an
:class:`~harness.errors.InputError` naming the member, before ``torch.export.load`` is called.
:func:`load_program` is the only way the harness opens a ``.pt2`` file.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from harness.errors import InputError, first_line

#: members, relative to the archive's top folder, that ``torch.export.load`` reads without pickle
_PLAIN_MEMBERS = re.compile(
    r"(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/[^/]+\.json|extra/.+"
    r"|data/weights/weight_\d+|data/constants/tensor_\d+"
    r"|data/(weights|constants)/[^/]+_(weights|constants)_config\.json)"
)
_SAMPLE_INPUTS = re.compile(r"data/sample_inputs/[^/]+\.pt")
_PAYLOAD_CONFIG = re.compile(r"data/(weights|constants)/[^/]+_config\.json")


def _refuse(path: Path, why: str) -> InputError:
    return InputError(f"exported program {path} was refused: {why}; nothing in it was executed",
                      hint="re-save the program with torch.export.save from plain tensors")


def check_archive(path: Path) -> None:
    """Raise :class:`InputError` unless every member of the ``.pt2`` archive loads without pickle."""
    import torch

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"exported program {path} cannot be loaded (truncated or not a torch.export file): "
                         f"{exc}") from None
    with archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        roots = {n.split("/", 1)[0] for n in names}
        if len(roots) != 1 or any("/" not in n for n in names):
            raise InputError(f"exported program {path} cannot be loaded (not a torch.export archive: "
                             "its members are not under one top folder)")
        members = {n.split("/", 1)[1]: n for n in names}
        archive_format = members.get("archive_format")
        if archive_format is None or archive.read(archive_format).decode(errors="replace").strip() != "pt2":
            raise _refuse(path, "it is not in the current torch.export archive format (archive_format 'pt2'); "
                                "older layouts are unpickled")
        for member, full in members.items():
            if _SAMPLE_INPUTS.fullmatch(member):
                try:
                    torch.load(io.BytesIO(archive.read(full)), map_location="cpu", weights_only=True)
                except Exception as exc:  # noqa: BLE001 - whatever the weights-only loader rejects
                    raise _refuse(path, f"its member {member} pickles objects beyond tensors "
                                        f"({type(exc).__name__}: {first_line(exc)})") from None
            elif not _PLAIN_MEMBERS.fullmatch(member):
                raise _refuse(path, f"its member {member} is neither a graph, a tensor payload nor sample inputs "
                                    "(pickled objects and native AOTInductor code are not loaded)")
            if _PAYLOAD_CONFIG.fullmatch(member):
                _check_payload_config(path, member, archive.read(full))


def _check_payload_config(path: Path, member: str, raw: bytes) -> None:
    try:
        entries: dict[str, Any] = json.loads(raw)["config"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"exported program {path} cannot be loaded: {member} is not a payload config "
                         f"({type(exc).__name__})") from None
    for name, meta in entries.items():
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
            raise _refuse(path, f"its {member} entry {name!r} is stored as a pickle")
        if not re.fullmatch(r"(weight|tensor)_\d+", str(meta.get("path_name", ""))):
            raise _refuse(path, f"its {member} entry {name!r} is a {meta.get('path_name')!r} object, not a tensor")


def load_program(path: str | Path):
    """The ``torch.export.ExportedProgram`` in ``path``, after :func:`check_archive` accepted it."""
    import torch

    path = Path(path)
    check_archive(path)
    try:
        return torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure to read the file is the file's fault
        raise InputError(f"exported program {path} cannot be loaded (truncated or not a torch.export file): "
                         f"{type(exc).__name__}: {first_line(exc)}") from None


def program_weights_mb(path: str | Path) -> float:
    """MiB of a ``torch.export`` program's state dict and constants."""
    program = load_program(path)
    tensors = list(program.state_dict.values()) + list(getattr(program, "constants", {}).values())
    return sum(t.numel() * t.element_size() for t in tensors if hasattr(t, "numel")) / 2**20
