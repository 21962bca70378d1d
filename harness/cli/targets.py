"""``harness targets``: list the device profiles, show one, detect which fits this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

targets_app = typer.Typer(
    no_args_is_help=True,
    help="Device profiles in targets/ (Jetson boards, NVIDIA GPUs, CPUs): list, show, detect.",
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")]


def _yes_no(value: bool | None) -> str:
    return "yes" if value else "no"


@targets_app.command("list")
def list_command(json_output: JsonOpt = False) -> None:
    """Every profile: kind, precisions, runtimes, sparse tensor cores, DLA cores, energy meter."""
    from harness.targets import list_targets

    targets = list_targets()
    if json_output:
        typer.echo(json.dumps([t.model_dump(mode="json") for t in targets], indent=2))
        return
    from rich.table import Table

    from harness.cli._output import plain, stdout

    table = Table(title="targets", title_justify="left")
    for column in ("name", "kind", "precisions", "runtimes", "sparse TC", "DLA", "TensorRT", "meter"):
        table.add_column(column)
    for t in targets:
        table.add_row(plain(t.name), t.kind, " ".join(t.precisions), " ".join(t.runtimes),
                      _yes_no(t.gpu.sparse_tensor_cores if t.gpu else None), str(t.dla.cores if t.dla else 0),
                      " ".join(r.version for r in t.tensorrt) or "-", t.energy.meter)
    stdout.print(table)


@targets_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Profile name (see `harness targets list`) or a TOML file.")],
    json_output: JsonOpt = False,
) -> None:
    """One profile, every field."""
    from harness.targets import load_target

    target = load_target(name)
    data = target.model_dump(mode="json")
    if json_output:
        typer.echo(json.dumps(data, indent=2))
        return
    from rich.text import Text

    from harness.cli._output import plain, stdout

    stdout.print(Text.assemble(plain(target.name, style="bold"), ": ", plain(target.description)))
    for key, value in data.items():
        if key in ("name", "description") or value in (None, [], {}):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, []))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            value = "; ".join(", ".join(f"{k}={v}" for k, v in item.items()) for item in value)
        elif key == "notes":
            value = "".join(f"\n  - {note}" for note in value)
        elif isinstance(value, list):
            value = " ".join(map(str, value))
        stdout.print(plain(f"{key}: {value}", lines=True))


@targets_app.command("detect")
def detect_command(
    json_output: JsonOpt = False,
    device_tree_root: Annotated[Path, typer.Option(help="Where the device tree is (a Jetson's model file).")] = Path(
        "/proc/device-tree"),
    proc_root: Annotated[Path, typer.Option(help="Where cpuinfo and meminfo are.")] = Path("/proc"),
) -> None:
    """Which profile fits this machine: a Jetson board, else an NVIDIA GPU (nvidia-smi), else the CPU."""
    from harness.errors import DeviceUnavailable
    from harness.targets import detect_target

    found = detect_target(device_tree_root=device_tree_root, proc_root=proc_root)
    if json_output:
        typer.echo(json.dumps(found.to_dict(), indent=2))
    else:
        from rich.text import Text

        from harness.cli._output import plain, stderr, stdout

        stdout.print(plain(f"target: {found.target or 'none'} ({found.reason})"))
        for gpu in found.gpus:
            stdout.print(plain(f"gpu: {gpu['name']}, compute capability {gpu['compute_capability']}, "
                               f"{gpu['memory_mb']} MiB, driver {gpu['driver']}"))
        stdout.print(plain(f"cpu: {found.cpu_arch}, flags {' '.join(found.cpu_flags) or 'none of note'}, "
                           f"memory {found.memory_gb} GiB"))
        for warning in found.warnings:
            stderr.print(Text.assemble(("warning:", "yellow"), " ", plain(warning)))
    if found.target is None:
        raise DeviceUnavailable(f"no target profile fits this machine: {found.reason}")
