"""Reproduce the seed papers' questions on the long-tailed digits default (issue #4).

    python benchmarks/findings.py                  # runs the default with population = 5, then analyses it
    python benchmarks/findings.py --run RUN_ID     # analyses a run already in results/harness.db

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


def run_default(population: int, results: Path) -> str:
    text = resources.files("harness.experiments").joinpath("default.toml").read_text()
    if "population" in tomllib.loads(text):
        sys.exit("the embedded default already sets population; edit this script")
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
    with st.engine.connect() as conn:
        names = {r.variant_id: r.name for r in conn.execute(s.variants.select().where(s.variants.c.run_id == run_id))}
        labels = json.loads(conn.execute(s.evaluations.select().where(s.evaluations.c.run_id == run_id)).first().labels_json)
    points = [p for p in st.operating_points(run_id) if p.runtime == RUNTIME and p.batch_size == 1 and p.status == "ok"]
    st.close()
    y = np.asarray(labels)

    def population(primary: str) -> np.ndarray:  # [K, N, C] logits: primary first, then the other seeds
        members = [logits[(vid, RUNTIME)] for vid, name in names.items()
                   if (name == primary or name.startswith(primary + "#seed")) and (vid, RUNTIME) in logits]
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
        ci_text = "; ".join(f"{c}: [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" for c, ci in zip(under, rare_ci) if ci)
        auc = "n/a (no CIE)" if power.auroc is None else f"{power.auroc:.3f}"
        lines.append(
            f"| {p.variant_name} | {100 * p.accuracy.top1_delta:+.1f} pp | {100 * np.mean(rare):+.1f} pp ({ci_text}) | "
            f"{100 * np.mean(rest):+.1f} pp | {p.bias.n_classes_hurt} | "
            f"{'n/a' if p.bias.cev is None else f'{p.bias.cev:.0f}'} | {100 * p.bias.cie_fraction:.1f}% | {auc} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="analyse this run instead of starting one")
    parser.add_argument("--population", type=int, default=5)
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    args = parser.parse_args()
    run_id = args.run or run_default(args.population, args.results_dir)
    print(analyse(args.results_dir / "harness.db", run_id))


if __name__ == "__main__":
    main()
