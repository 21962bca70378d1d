"""``harness inspect MODEL.onnx|MODEL.pt2``: what a model file really holds: its tensors, ops and, for
ONNX, every weight layer."""

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
    model: Annotated[Path, typer.Argument(metavar="MODEL.onnx|MODEL.pt2", help="Any ONNX file (fp32, fp16, QDQ int8, "
                                          "dynamic int8) or torch.export program (.pt2).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")] = False,
) -> None:
    """Inputs and outputs (name, dtype, shape with dynamic axes named), producer, opset and the op-type
    histogram. For ONNX, per layer: weight sparsity, 2:4 compliance along the reduction axis, quantized
    or not, weight precision, MACs; whole model: parameters, MACs (per sample, from ONNX shape
    inference), file size. For a .pt2 program: its signature's inputs and outputs and the histogram of
    its call_function targets.
    """
    from rich.table import Table

    from harness.cli._output import plain, stdout
    from harness.errors import ConfigError
    from harness.export.report import inspect_model, inspect_program_file
    from harness.records import to_dict

    if not model.is_file():  # a path that names no file is a bad argument (exit 2), as for an experiment file
        raise ConfigError(f"model file not found: {model}")
    if model.suffix.lower() == ".pt2":
        program = inspect_program_file(model)
        if json_output:
            typer.echo(json.dumps(to_dict(program), indent=2))
            return
        stdout.print(_tensors_table(f"{program.path}: signature", program.inputs, program.outputs))
        stdout.print(_ops_line(program.op_histogram, "call_function targets"))
        stdout.print(plain(f"parameters {_count(program.parameters)} | buffers and constants {_count(program.buffers)} | "
                           f"file {program.file_mb:.3f} MB"))
        return
    report = inspect_model(model)
    if json_output:
        typer.echo(json.dumps(to_dict(report), indent=2))
        return
    stdout.print(_tensors_table(f"{report.path}: graph inputs and outputs", report.inputs, report.outputs))
    stdout.print(_ops_line(report.op_histogram, "op types"))
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
        f"eligible | opset {report.opset} | producer {report.producer_name or 'n/a'} {report.producer_version or ''}".rstrip()
    ))


def _shape(shape: list | None) -> str:
    return "unknown" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def _tensors_table(title: str, inputs: list, outputs: list):
    from rich.table import Table

    from harness.cli._output import plain

    table = Table(title=plain(title), title_justify="left")
    for col in ("", "name", "dtype", "shape"):
        table.add_column(col, overflow="fold")
    for kind, tensors in (("input", inputs), ("output", outputs)):
        for t in tensors:
            table.add_row(kind, plain(t.name), plain(t.dtype or "n/a"), plain(_shape(t.shape)))
    return table


def _ops_line(counts: dict[str, int], what: str):
    from harness.cli._output import plain

    return plain(f"{what} ({sum(counts.values())} nodes): " + (", ".join(f"{op} {n}" for op, n in counts.items()) or "none"))
