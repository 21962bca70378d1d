"""Benchmark: what the measurement itself costs, and how repeatable it is (docs/measurement.md).

Side by side in one run, on the default experiment's small CNN (untrained weights: timing only),
exported to ONNX and run by onnxruntime's CPU EP with the harness's runner settings:

1. Null-runner overhead: ``sample_latency`` over a query that does nothing; its p50 is the
   per-iteration cost the harness adds around every query (target: under 5 us).
2. Harness vs bare loop: the harness's p50 (``sample_latency`` around ``runner.infer``) against
   a bare ``session.run`` loop timed with ``perf_counter`` on the same session, in alternating
   blocks so load from other processes falls on both alike (target: ratio at most 1.03).
3. Repeatability: the same operating point measured N times back to back, each in a fresh
   measuring process as the pipeline does; the spread of p50 (max / min - 1) and each run's
   stability verdict.

    python benchmarks/measurement.py [--batch 1] [--blocks 10] [--repeats 5] [--profile quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

THREADS = 2


def _artifact(out: Path) -> tuple[Path, np.ndarray]:
    import torch

    from harness.data import DATASETS
    from harness.experiment import load_experiment
    from harness.export.onnx import export_onnx, export_program
    from harness.models.train import build_model

    spec = load_experiment(None)
    dataset = DATASETS.get(spec.dataset.name)(spec.dataset, spec.seed)
    torch.manual_seed(0)
    model = build_model(spec.model, dataset).eval()
    x = np.ascontiguousarray(dataset.evaluation.x[:64])
    program = export_program(model, x[:1], out / "model.pt2")
    export_onnx(program, x[:1], out / "model.onnx")
    return out / "model.onnx", x


def null_overhead_us(rule) -> tuple[float, float]:
    from harness.measure.latency import nearest_rank, sample_latency

    trace = sample_latency(lambda: None, rule)
    us = sorted(s * 1e6 for s in trace.samples_s)
    loop_us = trace.wall_s / len(trace.samples_s) * 1e6  # whole loop per iteration, stopping rule included
    return nearest_rank(us, 50), loop_us


def harness_vs_bare(onnx: Path, xb: np.ndarray, rule, blocks: int) -> tuple[float, float]:
    from harness.measure.latency import nearest_rank, sample_latency
    from harness.runtimes.onnxrt import OnnxRuntimeRunner

    harness_ms: list[float] = []
    bare_ms: list[float] = []
    with OnnxRuntimeRunner(onnx, threads=THREADS) as runner:
        session, name = runner._session, runner._input
        for _ in range(20):
            session.run(None, {name: xb})
        def bare(n: int) -> None:
            for _ in range(n):
                t0 = time.perf_counter()
                session.run(None, {name: xb})
                bare_ms.append((time.perf_counter() - t0) * 1e3)

        for block in range(blocks):  # which loop goes first alternates, so neither always follows the other
            if block % 2:
                bare(rule.min_samples)
            trace = sample_latency(lambda: runner.infer(xb), rule)
            harness_ms += [s * 1e3 for s in trace.samples_s]
            if not block % 2:
                bare(len(trace.samples_s))
    return nearest_rank(sorted(harness_ms), 50), nearest_rank(sorted(bare_ms), 50)


def repeatability(onnx: Path, x: np.ndarray, batch: int, profile: str, repeats: int, tmp: Path) -> list[dict]:
    from harness.config import MeasureSpec
    from harness.measure.latency import resolve_rule
    from harness.measure.launch import measure
    from harness.measure.worker import MeasureRequest
    from harness.records import to_dict

    np.save(tmp / "x.npy", x)
    spec = MeasureSpec(profile=profile, batch_sizes=[batch])
    request = MeasureRequest("onnxruntime", str(onnx), str(tmp / "x.npy"), [batch], to_dict(resolve_rule(spec)),
                             THREADS, profile, scenarios=[spec.scenario_for(batch)], idle_baseline_s=0.0)
    return [measure(request, "process")["batches"][0]["latency"] for _ in range(repeats)]


def main() -> None:
    from harness.config import MeasureSpec
    from harness.measure.latency import resolve_rule

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--blocks", type=int, default=10, help="alternating harness / bare blocks")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--profile", default="quick", choices=["quick", "standard"])
    args = ap.parse_args()
    rule = resolve_rule(MeasureSpec(profile=args.profile))
    with tempfile.TemporaryDirectory(prefix="bench-measure-") as tmp_s:
        tmp = Path(tmp_s)
        onnx, x = _artifact(tmp)
        xb = np.ascontiguousarray(np.resize(x, (args.batch, *x.shape[1:])))
        p50_us, loop_us = null_overhead_us(rule)
        print(f"null runner: p50 {p50_us:.3f} us per query (timing overhead); whole loop {loop_us:.3f} us per iteration")
        h, b = harness_vs_bare(onnx, xb, rule, args.blocks)
        print(f"onnxruntime batch {args.batch}, {THREADS} threads: harness p50 {h:.4f} ms, bare session.run p50 "
              f"{b:.4f} ms, ratio {h / b:.3f}")
        runs = repeatability(onnx, x, args.batch, args.profile, args.repeats, tmp)
        p50s = [r["p50_ms"] for r in runs]
        for i, r in enumerate(runs):
            ci = r["p50_ci_ms"]
            print(f"  run {i + 1}: p50 {r['p50_ms']:.4f} ms [95% CI {ci[0]:.4f}, {ci[1]:.4f}], n {r['n_samples']}, "
                  f"CV {r['cv']:.1%}, {r['stability']}" + (f" ({r['unstable_reason']})" if r["unstable_reason"] else ""))
        print(f"repeatability over {len(runs)} fresh-process runs ({args.profile} profile): p50 min {min(p50s):.4f} "
              f"max {max(p50s):.4f} ms, spread (max/min - 1) {max(p50s) / min(p50s) - 1:.1%}")


if __name__ == "__main__":
    main()
