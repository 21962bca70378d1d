"""Building each variant's deployable files, cached by ``variant_id``.

fp32 variants: prune (+ fine-tune / distil) the baseline -> ``model.pt2`` (torch.export) and
``model.onnx``. Quantized variants: quantize the parent's ONNX -> ``model.onnx`` (or
``model.trt-qdq.onnx``, format ``onnx-trt-qdq``, for the TensorRT placement). Every variant's
``details.json`` carries the inspection of its ONNX file (per layer: sparsity, 2:4, quantized,
precision, MACs); a 2:4 variant whose exported weights are not 2:4 fails. ``details.json`` is
written last, so a directory without it is an interrupted build and is rebuilt.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_text
from harness.compress.variants import Variant
from harness.data.base import Dataset
from harness.errors import HarnessError, VariantError
from harness.export.formats import FORMATS
from harness.progress import ProgressReporter

#: artifact format -> its file name in a variant's cache directory (from :data:`harness.export.formats.FORMATS`)
FORMAT_FILES = FORMATS.files()


@dataclass(frozen=True)
class BuiltVariant:
    variant: Variant
    files: dict[str, Path]  # artifact format -> file
    details: dict[str, Any]
    cached: bool


def _open_cache(cache_dir: Path, variant: Variant) -> tuple[Path, BuiltVariant | None]:
    """The variant's cache directory and its complete earlier build, or an emptied directory and None."""
    directory = cache_dir / variant.variant_id
    marker = directory / "details.json"
    if marker.exists():
        details = json.loads(marker.read_text())
        files = {fmt: directory / name for fmt, name in FORMAT_FILES.items() if fmt in details["formats"]}
        if all(p.exists() for p in files.values()):
            return directory, BuiltVariant(variant, files, details, cached=True)
    shutil.rmtree(directory, ignore_errors=True)  # an interrupted build is redone from scratch
    directory.mkdir(parents=True)
    return directory, None


def _finish(directory: Path, variant: Variant, files: dict[str, Path], details: dict[str, Any]) -> BuiltVariant:
    details = {**details, "formats": sorted(files)}
    atomic_write_text(directory / "details.json", json.dumps(details, indent=2, sort_keys=True))
    return BuiltVariant(variant, files, details, cached=False)


def _stage(variant: Variant, stage: str):
    """Context manager turning any failure inside a build stage into a VariantError naming it."""
    from contextlib import contextmanager

    @contextmanager
    def wrapper():
        try:
            yield
        except VariantError:
            raise
        except HarnessError as exc:
            raise VariantError(variant.name, stage, str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - any library failure is recorded, the sweep goes on
            raise VariantError(variant.name, stage, f"{type(exc).__name__}: {exc}") from exc

    return wrapper()


def _inspection(path: Path) -> dict[str, Any]:
    from harness.export.report import inspect_model
    from harness.records import to_dict

    return to_dict(inspect_model(path))


def _require_2_4(variant: Variant, path: Path, layers: list[str]) -> dict[str, Any]:
    """Validate the pruned layers in the written file; a layer that lost its 2:4 pattern fails the variant."""
    from harness.export.inspect import validate_2_4

    checks = validate_2_4(path)
    bad = {name: c for name, c in checks.items() if c.eligible and not c.compliant}
    if bad:
        name, c = next(iter(bad.items()))
        raise VariantError(variant.name, "2:4 validation", f"layer {name} of {path.name} has {c.n_violations} of "
                           f"{c.n_groups} groups along its reduction axis with fewer than 2 zeros")
    return {"validated_file": path.name, "layers_checked": len(checks), "layers_pruned_in_torch": len(layers),
            "layers_2_4": sorted(name for name, c in checks.items() if c.compliant),
            "layers_not_eligible": sorted(name for name, c in checks.items() if not c.eligible)}


def build_fp32(
    variant: Variant, baseline, dataset: Dataset, seed: int, cache_dir: Path, progress: ProgressReporter
) -> BuiltVariant:
    from harness.compress import PRUNERS
    from harness.export.onnx import export_onnx, export_program, parity

    directory, cached = _open_cache(cache_dir, variant)
    if cached is not None:
        return cached
    details: dict[str, Any] = {"variant": variant.name}
    model = baseline
    if variant.prune_method != "none":
        with _stage(variant, "prune"):
            result = PRUNERS.get(variant.prune_method)(
                baseline, variant.prune_amount, variant.prune_options, dataset, seed, progress, variant.name
            )
        model = result.model
        details.update(
            macs_before=result.macs_before,
            macs_after=result.macs_after,
            params_before=result.params_before,
            params_after=result.params_after,
            pruning=result.details,
        )
    example = dataset.evaluation.x[:1]
    files = {"torch.export": directory / FORMAT_FILES["torch.export"], "onnx": directory / FORMAT_FILES["onnx"]}
    with _stage(variant, "export"):
        program = export_program(model, example, files["torch.export"])
        export_onnx(program, example, files["onnx"])
        check = parity(model, files["onnx"], dataset.evaluation.x[:64])
    details["parity"] = {
        "max_abs_diff": check.max_abs_diff,
        "top1_agreement": check.top1_agreement,
        "n_samples": check.n_samples,
        "reference": "torch eager vs onnxruntime CPU",
    }
    with _stage(variant, "inspect"):
        if variant.prune_method == "2:4":
            details["two_four"] = _require_2_4(variant, files["onnx"], details["pruning"].get("layers_pruned", []))
        details["inspection"] = _inspection(files["onnx"])
    return _finish(directory, variant, files, details)


def build_from_file(variant: Variant, source: Path, dataset: Dataset, cache_dir: Path) -> BuiltVariant:
    """The dense variant of a model given as a file: an ``.onnx`` is copied as it is; a ``.pt2``
    program is copied and exported to ONNX (its module is the parity reference)."""
    from harness.export.onnx import export_onnx

    directory, cached = _open_cache(cache_dir, variant)
    if cached is not None:
        return cached
    details: dict[str, Any] = {"variant": variant.name, "source_file": str(source)}
    files = {"onnx": directory / FORMAT_FILES["onnx"]}
    if source.suffix.lower() == ".onnx":
        from harness.models.sources import copy_onnx_model

        copy_onnx_model(source, files["onnx"])  # with its external data, embedded
    else:
        from harness.export.pt2 import load_program

        files["torch.export"] = directory / FORMAT_FILES["torch.export"]
        shutil.copyfile(source, files["torch.export"])
        with _stage(variant, "export"):
            program = load_program(source)
            export_onnx(program, dataset.evaluation.x[:1], files["onnx"])
            details["parity"] = _program_parity(program, files["onnx"], dataset.evaluation.x[:64])
    with _stage(variant, "inspect"):
        details["inspection"] = _inspection(files["onnx"])
    return _finish(directory, variant, files, details)


def _program_parity(program, onnx_path: Path, x) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    import torch

    with torch.no_grad():  # an exported program's module has no eval(): it runs as it was captured
        ref = program.module()(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    return {"max_abs_diff": float(np.max(np.abs(ref - got))), "top1_agreement": float(np.mean(ref.argmax(1) == got.argmax(1))),
            "n_samples": len(x), "reference": "torch.export program vs onnxruntime CPU"}


def build_quantized(
    variant: Variant,
    parent: BuiltVariant,
    dataset: Dataset,
    cache_dir: Path,
    progress: ProgressReporter,
    *,
    reduce_range: bool,
) -> BuiltVariant:
    from harness.compress import QUANT_FORMATS, QUANTIZERS

    directory, cached = _open_cache(cache_dir, variant)
    if cached is not None:
        return cached
    quant = variant.quant
    if quant is None:
        raise ValueError(f"{variant.name} is not a quantized variant")
    fmt = QUANT_FORMATS[quant.recipe]
    out = directory / FORMAT_FILES[fmt]
    with _stage(variant, "quantize"):
        settings = QUANTIZERS.get(quant.recipe)(
            parent.files["onnx"], out, dataset.calibration.x, quant, reduce_range=reduce_range, progress=progress,
            label=variant.name,
        )
    details = {"variant": variant.name, "parent": parent.variant.name, "quantization": settings}
    for key in ("macs_before", "macs_after", "params_before", "params_after", "pruning"):
        if key in parent.details:
            details[key] = parent.details[key]
    with _stage(variant, "inspect"):
        if variant.prune_method == "2:4":
            details["two_four"] = _require_2_4(variant, out, details.get("pruning", {}).get("layers_pruned", []))
        details["inspection"] = _inspection(out)
    return _finish(directory, variant, {fmt: out}, details)
