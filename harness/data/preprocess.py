"""Shared preprocessing: decode, convert channels, scale to [0, 1], resize, normalise.

Every loader ends with float32 ``N x C x H x W`` arrays produced by the same steps in
the same order, and records them with :func:`record`:

1. channel conversion (``dataset.channels``): grey is replicated to 3 channels, colour
   becomes ITU-R 601-2 luma (the weights of PIL's ``convert("L")``);
2. scaling to [0, 1]: 8-bit pixels are divided by 255, float arrays must already be in [0, 1];
3. bilinear resize to ``image_size`` x ``image_size`` (``align_corners=False``, aspect
   ratio not kept), skipped when the source already has that size;
4. ``(x - mean) / std``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import DatasetSpec
from harness.errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
# 8-bit modes PIL converts to "L" or "RGB" without losing meaning; anything else (I;16, I, F) is refused
_CONVERTIBLE_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"}
_NATIVE_MODES = {"L": 1, "RGB": 3}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_RESIZE_CHUNK = 1024


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of float32 ``N x C x H x W`` to ``size x size`` (torch, align_corners=False)."""
    import torch
    import torch.nn.functional as F

    out = []
    with torch.no_grad():
        for start in range(0, len(x), _RESIZE_CHUNK):
            chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + _RESIZE_CHUNK]))
            out.append(F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False).numpy())
    return np.concatenate(out) if out else np.zeros((0, x.shape[1], size, size), np.float32)


def convert_channels(x: np.ndarray, channels: int | None) -> tuple[np.ndarray, str | None]:
    """Grey -> colour by replication, colour -> grey by luma; returns the array and what was done."""
    have = x.shape[1]
    if channels is None or channels == have:
        return x, None
    if channels == 3:
        return np.repeat(x, 3, axis=1), "grey replicated to 3 channels"
    return np.tensordot(x, _LUMA, axes=([1], [0]))[:, None].astype(np.float32), "ITU-R 601-2 luma"


def to_unit_range(x: np.ndarray, who: str) -> tuple[np.ndarray, str]:
    """8-bit (or integer within 0..255) pixels / 255; floats must already lie in [0, 1]."""
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise InputError(f"{who}: integer pixels must lie in 0..255, got {x.min()}..{x.max()}")
        return x.astype(np.float32) / 255.0, "pixel / 255"
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise InputError(f"{who}: pixels contain NaN or infinite values")
        if x.size and (x.min() < 0 or x.max() > 1):
            raise InputError(
                f"{who}: float pixels must lie in [0, 1], got {x.min():g}..{x.max():g}; store uint8 0..255 instead"
            )
        return x.astype(np.float32), "none (float input in [0, 1])"
    raise InputError(f"{who}: pixels must be integers or floats, got dtype {x.dtype}")


def finish(x: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """Resize (when needed) and normalise float32 ``N x C x H x W`` in [0, 1]."""
    if spec.image_size is not None and tuple(x.shape[-2:]) != (spec.image_size, spec.image_size):
        x = resize(x, spec.image_size)
    return ((x - spec.mean) / spec.std).astype(np.float32)


def record(spec: DatasetSpec, source: dict[str, Any], channels: int, split: str) -> dict[str, Any]:
    """The ``Dataset.preprocessing`` entry of every loader except digits.

    ``source`` says what was read: ``source_size``, ``source_channels`` (or ``source_modes``),
    ``channel_conversion`` and ``scale``.
    """
    return {
        **source,
        "channels": channels,
        "resize": spec.image_size,
        "resize_mode": "bilinear",
        "mean": spec.mean,
        "std": spec.std,
        "split": split,
    }


def load_image_files(paths: Sequence[Path], spec: DatasetSpec, who: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode image files into preprocessed float32 ``N x C x H x W`` plus a ``source`` for :func:`record`.

    With ``dataset.channels`` unset every image must have the mode of the first one (L or
    RGB); with ``dataset.image_size`` unset every image must have its size. A file that
    cannot be decoded, or has a mode or size that breaks these rules, is an error naming it.
    """
    from PIL import Image, UnidentifiedImageError

    if not paths:
        raise InputError(f"{who}: no images found")
    out: np.ndarray | None = None
    first: tuple[Path, str, tuple[int, int]] | None = None
    sizes: set[tuple[int, int]] = set()
    modes: set[str] = set()
    target_mode = ""
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                img.load()
                mode, size = img.mode, img.size
                if mode not in _CONVERTIBLE_MODES:
                    raise InputError(
                        f"{who}: {path} has image mode {mode!r}; only 8-bit grey or colour images are "
                        "supported: convert it to L or RGB"
                    )
                if first is None:
                    if spec.channels is None and mode not in _NATIVE_MODES:
                        raise InputError(
                            f"{who}: {path} has image mode {mode!r}; set dataset.channels = 1 or 3 to convert it"
                        )
                    first = (path, mode, size)
                target_mode = {1: "L", 3: "RGB"}.get(spec.channels or 0, first[1])
                if mode != target_mode:
                    if spec.channels is None:
                        raise InputError(
                            f"{who}: {path} has image mode {mode!r} but {first[0]} has {first[1]!r}; "
                            "set dataset.channels = 1 or 3 to convert every image"
                        )
                    pixels = np.asarray(img.convert(target_mode), dtype=np.uint8)
                else:
                    pixels = np.asarray(img, dtype=np.uint8)
        except FileNotFoundError:
            raise InputError(f"{who}: image {path} not found") from None
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
            raise InputError(f"{who}: cannot read image {path}: {exc}") from None
        if spec.image_size is None and size != first[2]:
            raise InputError(
                f"{who}: {path} is {size[0]}x{size[1]} but {first[0]} is {first[2][0]}x{first[2][1]}; "
                "set dataset.image_size to resize every image"
            )
        sizes.add(size)
        modes.add(mode)
        chw = (pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))[None].astype(np.float32) / 255.0
        chw = finish(chw, spec)
        if out is None:
            out = np.empty((len(paths), *chw.shape[1:]), dtype=np.float32)
        out[i] = chw[0]
    assert out is not None and first is not None
    source = {
        "source_size": [first[2][1], first[2][0]] if len(sizes) == 1 else "mixed",
        "source_modes": sorted(modes),
        "channel_conversion": None if spec.channels is None else f"PIL Image.convert({target_mode!r})",
        "scale": "pixel / 255",
    }
    return out, source
