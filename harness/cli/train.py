"""``harness train``: train a zoo / named / user model on a dataset, one checkpoint per seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.run import model_overrides

EXAMPLES = (
    "Examples:\n\n"
    "harness train --model resnet20 --dataset cifar10 --data-path ~/data/cifar-10-batches-py --epochs 30\n\n"
    "harness train my.toml --seeds 5  (the file's dataset, model and train sections; seeds seed..seed+4)"
)


def train_command(
    experiment: Annotated[
        Path | None,
        typer.Argument(help="Experiment TOML whose dataset / model / train / seed keys are used (omitted: the embedded default).",
                       show_default=False),
    ] = None,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="Zoo name, torchvision:NAME, timm:NAME or package.module:factory.")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="Dataset name (digits, cifar10, cifar100, imagefolder, manifest, celeba, npz).")] = None,
    data_path: Annotated[str | None, typer.Option("--data-path", help="The dataset's directory or file (dataset.path).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs (train.epochs).")] = None,
    seed: Annotated[int | None, typer.Option(help="First seed (the experiment's seed).")] = None,
    seeds: Annotated[int, typer.Option("--seeds", "-k", min=1, help="Train a population of K seeds: seed .. seed+K-1.")] = 1,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where checkpoints and their JSON sidecars go.")] = Path("results/models"),
    results_dir: Annotated[Path, typer.Option("--results-dir", help="Its cache/models is shared with `harness run`.")] = Path("results"),
    json_output: Annotated[bool, typer.Option("--json", help="Print the trained models as JSON on stdout.")] = False,
) -> None:
    """Train a model on a dataset and write ``<model>-<dataset>-seed<k>.pt`` (a state_dict) plus a
    JSON sidecar (architecture, dataset, classes, seed, evaluation accuracy) for each seed.
    """
    from dataclasses import asdict

    from rich.table import Table

    from harness.cli._output import RichProgress, metric_cell, plain, stderr, stdout
    from harness.experiment import load_experiment
    from harness.models.trainer import train_models

    overrides: dict = {}
    if model is not None:
        overrides["model"] = model_overrides(model, None)
    if dataset is not None:  # another dataset: the file's dataset-specific keys do not carry over
        overrides["dataset"] = {"name": dataset, "path": data_path, "target": None, "group_attributes": [],
                                "long_tail": None}
    elif data_path is not None:
        overrides["dataset"] = {"path": data_path}
    if epochs is not None:
        overrides["train"] = {"epochs": epochs}
    if seed is not None:
        overrides["seed"] = seed
    spec = load_experiment(experiment, overrides)
    with RichProgress() as progress:
        trained = train_models(spec, seeds=seeds, out_dir=out, cache_dir=results_dir / "cache" / "models",
                               progress=progress)
    table = Table(title=plain(f"{spec.model.name} on {spec.dataset.name}"))
    for col in ("seed", "top-1", "worst class", "checkpoint"):
        table.add_column(col)
    for t in trained:
        table.add_row(str(t.seed), metric_cell("top1", t.top1),
                      plain(f"{metric_cell('worst_class_recall', t.worst_class_recall)} ({t.worst_class})"), plain(t.checkpoint))
    (stderr if json_output else stdout).print(table)
    if json_output:
        typer.echo(json.dumps([asdict(t) for t in trained], indent=2))
