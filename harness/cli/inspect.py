"""``harness inspect MODEL.onnx``: what an ONNX file really holds, layer by layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def _count(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def inspect_command(
    model: Annotated[Path, typer.Argument(metavar="MODEL.onnx", help="Any ONNX file (fp32, fp16, QDQ int8, dynamic int8).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")] = False,
) -> None:
    """Per layer: weight sparsity, 2:4 compliance along the reduction axis, quantized or not, weight
    precision, MACs. Whole model: parameters, MACs (per sample, from ONNX shape inference), file size.
    """
    from rich.table import Table

    from harness.cli._output import plain, stdout
    from harness.errors import ConfigError
    from harness.export.report import inspect_model
    from harness.records import to_dict

    if not model.is_file():  # a path that names no file is a bad argument (exit 2), as for an experiment file
        raise ConfigError(f"model file not found: {model}")
    report = inspect_model(model)
    if json_output:
        typer.echo(json.dumps(to_dict(report), indent=2))
        return
    table = Table(title=plain(f"{report.path}: weight layers"), title_justify="left")
    for col in ["layer", "op", "weight shape", "params", "sparsity %", "2:4", "quantized", "precision", "MACs"]:
        table.add_column(col, justify="right" if col in ("params", "sparsity %", "MACs") else "left")
    for layer in report.layers:
        table.add_row(
            plain(layer.name), plain(layer.op_type), "x".join(map(str, layer.weight_shape)), _count(layer.params),
            f"{100 * layer.sparsity:.1f}", layer.two_four, "yes" if layer.quantized else "no", layer.precision,
            _count(layer.macs),
        )
    stdout.print(table)
    macs = _count(report.macs) if report.macs is not None else f"n/a ({report.macs_unavailable_reason})"
    stdout.print(plain(
        f"parameters {_count(report.parameters)} | MACs per sample {macs} | file {report.file_mb:.3f} MB | "
        f"precision {report.precision} | Q/DQ nodes {report.n_quantized_nodes} | weight sparsity "
        f"{100 * report.weight_sparsity:.1f} % | 2:4 layers {report.n_two_four_layers} of {report.n_two_four_eligible} "
        f"eligible | opset {report.opset}"
    ))
