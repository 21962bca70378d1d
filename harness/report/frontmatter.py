"""Hugging Face model card metadata for a run, and a tiny safe YAML emitter for it.

The metadata follows the Hub's model card spec (``huggingface_hub.ModelCardData`` /
``EvalResult``): ``pipeline_tag``, ``license`` and ``base_model`` (with ``base_model_relation``)
when known, ``tags``, ``datasets``, ``metrics`` and a
``model-index`` whose results carry ``task``, ``dataset`` and ``metrics`` (``type``,
``value``, ``name``). Only measured values appear: a metric that was not measured is
left out of ``model-index`` (the card's body says why), never written as 0.

:func:`to_yaml` writes block-style YAML in which every string is double-quoted with
escapes, so a hostile experiment or class name (quotes, colons, ``#``, newlines,
control characters) stays one scalar. pyyaml is not a dependency; the test suite
round-trips the output through it when it is installed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from harness.records import OperatingPoint, RunReport

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_DIGITS = 4


def _quote(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or 0x7F <= code <= 0x9F:
            out.append(f"\\x{code:02x}")
        elif code in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF) or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    return _quote(str(value))


def _key(key: Any) -> str:
    text = str(key)
    return text if _PLAIN_KEY.match(text) and text.lower() not in ("true", "false", "null", "yes", "no", "on", "off") \
        else _quote(text)


def _emit(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, Mapping):
        if not value:
            return [pad + "{}"]
        lines = []
        for k, v in value.items():
            if isinstance(v, Mapping | list | tuple) and v:
                lines.append(f"{pad}{_key(k)}:")
                lines += _emit(v, indent + (2 if isinstance(v, Mapping) else 0))
            elif isinstance(v, Mapping | list | tuple):
                lines.append(f"{pad}{_key(k)}: {'{}' if isinstance(v, Mapping) else '[]'}")
            else:
                lines.append(f"{pad}{_key(k)}: {_scalar(v)}")
        return lines
    if isinstance(value, list | tuple):
        lines = []
        for item in value:
            inner = _emit(item, indent + 2)
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines += inner[1:]
        return lines
    return [pad + _scalar(value)]


def to_yaml(data: Mapping[str, Any]) -> str:
    """Block-style YAML for nested dicts / lists of str, int, float, bool and None."""
    return "\n".join(_emit(data, 0)) + "\n"


def front_matter(data: Mapping[str, Any]) -> str:
    """``data`` as a YAML front matter block (between ``---`` lines) for the top of a Markdown card."""
    return "---\n" + to_yaml(data) + "---\n"


# --------------------------------------------------------------------------- the metadata


def _round(x: float) -> float:
    return round(float(x), _DIGITS)


def _metrics(point: OperatingPoint) -> list[dict[str, Any]]:
    acc = point.accuracy
    if acc is None:
        return []
    out = [
        {"type": "accuracy", "value": _round(acc.top1), "name": "Top-1 accuracy"},
        {"type": "recall", "value": _round(acc.worst_class_recall), "name": f"Worst-class recall ({acc.worst_class})"},
    ]
    if acc.worst_group_accuracy is not None:
        out.append({"type": "accuracy", "value": _round(acc.worst_group_accuracy),
                    "name": f"Worst-group accuracy ({acc.worst_group})"})
    bias = point.bias
    if bias is not None:
        out.append({"type": "cie_fraction", "value": _round(bias.cie_fraction),
                    "name": "Compression-identified exemplars (fraction of evaluation split)"})
        if bias.cev is not None:
            out.append({"type": "cev", "value": _round(bias.cev), "name": "Combined error variance vs dense (percent)"})
        out.append({"type": "ece", "value": _round(bias.ece), "name": "Expected calibration error (top-label, 15 bins)"})
    if point.latency is not None:
        out.append({"type": "latency_p50_ms", "value": _round(point.latency.p50_ms),
                    "name": f"p50 latency per query, batch {point.latency.batch_size} (ms)"})
    return out


def _tags(point: OperatingPoint | None) -> list[str]:
    tags = ["image-classification", "model-compression", "fairness-audit", "harness"]
    if point is not None:
        if point.prune_method != "none":
            tags.append("pruning")
        if point.precision not in ("fp32", "float32"):
            tags.append("quantization")
        tags.append(point.runtime)
    return tags


def base_model_relation(point: OperatingPoint | None) -> str | None:
    """How ``point``'s model comes from the base model: ``pruned`` when its variant was pruned (whether
    or not it was also quantized: the weights themselves changed), ``quantized`` when it was only
    quantized or stored at a lower precision (int8, fp16), None for the dense fp32 model itself."""
    if point is None:
        return None
    if point.prune_method != "none":
        return "pruned"
    if point.precision not in ("fp32", "float32"):
        return "quantized"
    return None


def card_metadata(report: RunReport, point: OperatingPoint | None) -> dict[str, Any]:
    """Hugging Face model card metadata for ``point`` (the chosen operating point) of ``report``.

    ``license`` comes from the experiment's ``[card]``; ``base_model`` is the model's file or
    checkpoint name (none for a model this run trained), and ``base_model_relation`` is written with
    it, for a chosen point that is not the base model itself. Each is left out when unknown.
    """
    ds = report.dataset
    meta: dict[str, Any] = {"pipeline_tag": "image-classification"}
    if report.license is not None:
        meta["license"] = report.license
    if report.base_model is not None:
        meta["base_model"] = report.base_model
        relation = base_model_relation(point)
        if relation is not None:
            meta["base_model_relation"] = relation
    if point is not None and point.artifact is not None and point.artifact.format == "onnx":
        meta["library_name"] = "onnx"
    meta["tags"] = _tags(point)
    meta["datasets"] = [ds.name]
    meta["metrics"] = ["accuracy", "recall"]
    metrics = _metrics(point) if point is not None else []
    if metrics:
        eval_split = next((s.name for s in ds.splits if s.name.lower().startswith("eval")), None)
        dataset: dict[str, Any] = {"name": ds.name, "type": ds.name}
        if eval_split is not None:
            dataset["split"] = eval_split
        name = f"{report.experiment_name}/{point.variant_name}" if point is not None else report.experiment_name
        meta["model-index"] = [{
            "name": name,
            "results": [{"task": {"type": "image-classification", "name": "Image Classification"},
                         "dataset": dataset, "metrics": metrics}],
        }]
    meta["harness"] = {
        "run_id": report.run_id,
        "experiment": report.experiment_name,
        "model": report.model_name,
        "point_id": point.point_id if point is not None else None,
        "variant": point.variant_name if point is not None else None,
        "runtime": point.runtime if point is not None else None,
        "precision": point.precision if point is not None else None,
        "batch_size": point.batch_size if point is not None else None,
    }
    return meta

