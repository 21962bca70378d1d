"""Reproduce the seed papers' questions on the long-tailed digits default (docs/findings.md).

    python benchmarks/findings.py                  # runs the default with population = 5, then analyses it
    python benchmarks/findings.py --run RUN_ID     # analyses a run already in results/harness.db
    python benchmarks/findings.py --distill        # pruning with and without distillation (Blakeney)

Prints Markdown: for each compressed variant (onnxruntime, batch 1), the top-1 change, the
recall change of the under-represented classes against the others (with bootstrap 95%
intervals), CEV, the CIE fraction, and how well the dense population's uncertainty predicts
CIE membership (AUROC). Whatever comes out is reported, as it is.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np

RUNTIME = "onnxruntime"


DISTILL_PRUNING = """
[[prune]]
method = "magnitude"
sparsity = [0.8]
finetune_epochs = 2

[[prune]]
method = "magnitude"
sparsity = [0.8]
finetune_epochs = 2
distill = true

[[prune]]
method = "channel"
ratio = [0.3]
finetune_epochs = 2

[[prune]]
method = "channel"
ratio = [0.3]
finetune_epochs = 2
distill = true

[measure]
batch_sizes = [1]
profile = "quick"
isolation = "inline"

[selection]
batch_size = 1
"""


def distill_experiment(text: str) -> str:
    """The default's data, model and training; the two moderate pruning settings (magnitude 80 %,
    channel 0.3; 90 % and 0.5 collapse the model, docs/findings.md) plain and distilled (T = 4,
    alpha = 0.5), fp32 only, onnxruntime only, batch 1: the comparison needs no other point, and
    5 seeds of this run cost about 15 CPU-minutes on 2 cores."""
    head = text[: text.index("[[prune]]")]
    head = head.replace('runtimes = ["onnxruntime", "torch"]', 'runtimes = ["onnxruntime"]')
    return head + DISTILL_PRUNING


def run_default(population: int, results: Path, distill: bool = False) -> str:
    text = resources.files("harness.experiments").joinpath("default.toml").read_text()
    if "population" in tomllib.loads(text):
        sys.exit("the embedded default already sets population; edit this script")
    if distill:
        text = distill_experiment(text)
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(f"population = {population}\n" + text)
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", f.name, "--json", "--results-dir", str(results)],
        capture_output=True, text=True,
    )
    if proc.returncode not in (0, 6):
        sys.exit(proc.stderr[-3000:])
    return json.loads(proc.stdout)["run_id"]


def analyse(store_path: Path, run_id: str) -> str:
    from harness.metrics import dense_scores, modal_cie, predictive_power, softmax
    from harness.store import open_store
    from harness.store import schema as s

    st = open_store(store_path)
    row = st.run_row(run_id)
    dataset = json.loads(row["dataset_json"])
    under = dataset["under_represented"]
    logits = st.evaluation_logits(run_id)
    variants = sorted(st.variant_rows(run_id), key=lambda r: r["seed"])  # the deployed (first) seed first
    with st.engine.connect() as conn:
        labels = json.loads(conn.execute(s.evaluations.select().where(s.evaluations.c.run_id == run_id)).first().labels_json)
    points = [p for p in st.operating_points(run_id) if p.runtime == RUNTIME and p.batch_size == 1 and p.status == "ok"]
    st.close()
    y = np.asarray(labels)

    def population(primary: str) -> np.ndarray:  # [K, N, C] logits: primary first, then the other seeds
        members = [logits[(r["variant_id"], RUNTIME)] for r in variants
                   if r["name"] == primary and (r["variant_id"], RUNTIME) in logits]
        return np.stack(members)

    dense = population("dense")
    dense_pred = dense.argmax(2)
    risk = dense_scores(softmax(dense)).uncertainty
    lines = [
        f"Run `{run_id}`: population of {dense.shape[0]} seeds, {len(y)} evaluation images, "
        f"under-represented classes {', '.join(under)}.",
        "",
        "| variant | top-1 change | under-represented recall change | other classes' recall change | "
        "classes hurt > top-1 | CEV | CIE fraction | AUROC of dense uncertainty for CIE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in sorted(points, key=lambda p: p.variant_name):
        if p.variant_name == "dense" or p.bias is None:
            continue
        comp = population(p.variant_name)
        cie = modal_cie(dense_pred, comp.argmax(2))
        power = predictive_power(risk, cie)
        deltas = p.accuracy.per_class_delta
        rare = [deltas[c] for c in under if deltas.get(c) is not None]
        rest = [d for c, d in deltas.items() if c not in under and d is not None]
        rare_ci = [p.bias.per_class_delta_ci.get(c) for c in under]
        ci_text = "; ".join(f"{c}: [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" for c, ci in zip(under, rare_ci, strict=True) if ci)
        auc = "n/a (no CIE)" if power.auroc is None else f"{power.auroc:.3f}"
        lines.append(
            f"| {p.variant_name} | {100 * p.accuracy.top1_delta:+.1f} pp | {100 * np.mean(rare):+.1f} pp ({ci_text}) | "
            f"{100 * np.mean(rest):+.1f} pp | {p.bias.n_classes_hurt} | "
            f"{'n/a' if p.bias.cev is None else f'{p.bias.cev:.0f}'} | {100 * p.bias.cie_fraction:.1f}% | {auc} |"
        )
    return "\n".join(lines)


def analyse_distillation(store_path: Path, run_id: str) -> str:
    """Each pruning setting beside its distilled twin (``<name>-kd``): CEV under both definitions
    (over the 5-seed population, against the first seed's dense model), CIE fraction, top-1 and
    rare-class recall change of the deployed model."""
    from harness.metrics import cev_sde, modal_cie
    from harness.store import open_store
    from harness.store import schema as s

    st = open_store(store_path)
    row = st.run_row(run_id)
    under = json.loads(row["dataset_json"])["under_represented"]
    logits = st.evaluation_logits(run_id)
    variants = sorted(st.variant_rows(run_id), key=lambda r: r["seed"])  # the deployed (first) seed first
    with st.engine.connect() as conn:
        labels = json.loads(conn.execute(s.evaluations.select().where(s.evaluations.c.run_id == run_id)).first().labels_json)
    points = {p.variant_name: p for p in st.operating_points(run_id)
              if p.runtime == RUNTIME and p.batch_size == 1 and p.status == "ok"}
    st.close()
    y = np.asarray(labels)

    def preds(primary: str) -> np.ndarray:  # [K, N]: the deployed (first-seed) model first, then seed order
        vids = [r["variant_id"] for r in variants if r["name"] == primary]
        return np.stack([logits[(vid, RUNTIME)].argmax(1) for vid in vids if (vid, RUNTIME) in logits])

    dense = preds("dense")
    n_classes = int(logits[next(iter(logits))].shape[1])
    lines = [
        "| pruning | fine-tuning | top-1 change | rare-class recall change | CEV (reference, %²) [95% CI] | "
        "CEV (normalised) | SDE (reference, %) | CIE fraction [95% CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for plain in sorted(n for n in points if n != "dense" and not n.endswith("-kd")):
        for name, how in ((plain, "plain"), (plain + "-kd", "distilled")):
            p = points.get(name)
            if p is None or p.bias is None:
                lines.append(f"| {plain} | {how} | failed or missing | | | | | |")
                continue
            comp = preds(name)
            norm = cev_sde(y, dense[0], comp, n_classes, variant="normalised")
            if int(modal_cie(dense, comp).sum()) != p.bias.n_cie:
                sys.exit(f"{name}: recomputed CIE differs from the stored one")
            rare = np.mean([p.accuracy.per_class_delta[c] for c in under])
            b = p.bias
            cev_ci = f"[{b.cev_ci[0]:.0f}, {b.cev_ci[1]:.0f}]" if b.cev_ci else "n/a"
            cie_ci = f"[{100 * b.cie_ci[0]:.1f}, {100 * b.cie_ci[1]:.1f}]" if b.cie_ci else "n/a"
            lines.append(
                f"| {plain} | {how} | {100 * p.accuracy.top1_delta:+.1f} pp | {100 * rare:+.1f} pp | "
                f"{'n/a' if b.cev is None else f'{b.cev:.0f}'} {cev_ci} | "
                f"{'n/a' if norm.cev is None else f'{norm.cev:.3f}'} | {'n/a' if b.sde is None else f'{b.sde:.0f}'} | "
                f"{100 * b.cie_fraction:.1f}% {cie_ci} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="analyse this run instead of starting one")
    parser.add_argument("--population", type=int, default=5)
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--distill", action="store_true", help="run (or read) the plain-vs-distilled experiment")
    args = parser.parse_args()
    run_id = args.run or run_default(args.population, args.results_dir, args.distill)
    store = args.results_dir / "harness.db"
    print(analyse(store, run_id))
    if args.distill:
        print()
        print(analyse_distillation(store, run_id))


if __name__ == "__main__":
    main()
