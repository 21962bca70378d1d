"""NumPy ``.npz`` arrays: images ``x``, integer labels ``y``, optional class and group names.

``x`` is ``[N, H, W]`` (grey), ``[N, C, H, W]`` or ``[N, H, W, C]`` with C 1 or 3 (channels
first wins when both readings fit), uint8 0..255 or float in [0, 1]. ``y`` holds class
indices; ``class_names`` (strings) fixes the class range, otherwise it is 0 up to the
largest label. Every ``groups_<attr>`` array (or only those named in
``dataset.group_attributes``) becomes a group attribute: with a ``group_levels_<attr>``
string array its values are indices into it, otherwise its distinct values, sorted, are
the levels. The file is read with ``allow_pickle=False``. Splits are stratified and seeded.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from harness.config import DatasetSpec
from harness.data import preprocess
from harness.data.base import (
    Dataset,
    apply_long_tail,
    build_dataset,
    check_spec,
    encode_levels,
    split_fractions,
    stratified_split,
)
from harness.errors import InputError

NPZ_MISSING = (
    "npz: {where} not found; expected a .npz file (numpy.savez) with arrays x ([N,H,W], [N,C,H,W] or "
    "[N,H,W,C]) and y ([N] class indices), optional class_names and groups_<attribute>"
)
GROUP_PREFIX = "groups_"
LEVELS_PREFIX = "group_levels_"


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"npz: cannot read {path}: {exc}") from None


def _layout(x: np.ndarray, path: Path) -> tuple[np.ndarray, str]:
    """``x`` as N x C x H x W and the layout it was stored in."""
    if x.ndim == 3:
        return x[:, None], "NHW"
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x, "NCHW"
    if x.ndim == 4 and x.shape[3] in (1, 3):
        return x.transpose(0, 3, 1, 2), "NHWC"
    raise InputError(
        f"npz: {path} x has shape {list(x.shape)}; expected [N,H,W], [N,C,H,W] or [N,H,W,C] with C 1 or 3"
    )


def _strings(arrays: dict[str, np.ndarray], key: str, path: Path) -> list[str] | None:
    if key not in arrays:
        return None
    a = arrays[key]
    if a.ndim != 1 or a.dtype.kind not in "US":
        raise InputError(f"npz: {path} {key} must be a 1-D string array, got {a.dtype} {list(a.shape)}")
    return [v.decode() if isinstance(v, bytes) else str(v) for v in a.tolist()]


def _indices(values: np.ndarray, n_levels: int | None, path: Path, key: str, what: str) -> np.ndarray:
    if values.dtype.kind not in "iub":
        raise InputError(f"npz: {path} {key} must hold integer {what}, got dtype {values.dtype}")
    values = values.astype(np.int64)
    top = n_levels if n_levels is not None else (int(values.max()) + 1 if values.size else 0)
    outside = np.unique(values[(values < 0) | (values >= top)])
    if len(outside):
        raise InputError(f"npz: {path} {key} has {what} outside 0..{top - 1}: {outside.tolist()[:10]}")
    return values


def _groups(arrays: dict[str, np.ndarray], spec: DatasetSpec, n: int, path: Path):
    found = [k.removeprefix(GROUP_PREFIX) for k in arrays if k.startswith(GROUP_PREFIX)]
    wanted = spec.group_attributes or sorted(found)
    missing = [a for a in wanted if a not in found]
    if missing:
        have = ", ".join(sorted(arrays))
        raise InputError(f"npz: {path} has no array {', '.join(GROUP_PREFIX + a for a in missing)} (has: {have})")
    groups: dict[str, np.ndarray] = {}
    levels: dict[str, list[str]] = {}
    for attr in wanted:
        key = GROUP_PREFIX + attr
        values = arrays[key]
        if values.shape != (n,):
            raise InputError(f"npz: {path} {key} has shape {list(values.shape)}, expected [{n}]")
        names = _strings(arrays, LEVELS_PREFIX + attr, path)
        if names is None:
            groups[attr], levels[attr] = encode_levels(values)
        else:
            groups[attr], levels[attr] = _indices(values, len(names), path, key, "levels"), names
    return groups, levels


def load_npz_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    path = check_spec(spec, "npz", groups=True)
    assert path is not None
    if not path.is_file():
        raise InputError(NPZ_MISSING.format(where=path))
    arrays = _read(path)
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise InputError(f"npz: {path} has no array {', '.join(missing)} (has: {', '.join(sorted(arrays))})")
    x, layout = _layout(arrays["x"], path)
    y = arrays["y"]
    if y.shape != (len(x),):
        raise InputError(f"npz: {path} y has shape {list(y.shape)}, expected [{len(x)}] (one label per image)")
    class_names = _strings(arrays, "class_names", path)
    y = _indices(y, None if class_names is None else len(class_names), path, "y", "labels")
    if class_names is None:
        class_names = [str(c) for c in range(int(y.max()) + 1 if len(y) else 0)]
    groups, levels = _groups(arrays, spec, len(y), path)

    source_size, source_channels = list(x.shape[-2:]), int(x.shape[1])
    x, scale = preprocess.to_unit_range(x, f"npz: {path} x")
    x, conversion = preprocess.convert_channels(x, spec.channels)
    x = preprocess.finish(x, spec)
    parts = stratified_split(y, split_fractions(spec), seed)
    parts["train"], under = apply_long_tail(parts["train"], y, spec.long_tail, class_names, seed)
    source = {
        "source_size": source_size,
        "source_channels": source_channels,
        "source_layout": layout,
        "channel_conversion": conversion,
        "scale": scale,
    }
    return build_dataset(
        "npz",
        x,
        y,
        parts,
        class_names,
        groups=groups,
        group_levels=levels,
        under_represented=under,
        preprocessing=preprocess.record(spec, source, x.shape[1], "stratified, seeded dataset.split fractions"),
        description=f"NumPy arrays {path} ({len(y)} images, {len(class_names)} classes)",
    )
