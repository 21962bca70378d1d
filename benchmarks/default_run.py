"""Benchmark: the embedded default run, cold (nothing cached) and warm (cache reused).

Prints wall times against the default run's 3-minute budget and, from the same run, the
speedups the default's own operating points show on onnxruntime at batch 1 (medians of
each point's latency samples, measured side by side in the one run).

    python benchmarks/default_run.py            # cold + warm
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 180.0


def timed_run(results: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--json", "--results-dir", str(results)],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 6):
        sys.exit(f"harness run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout)


def p50(doc: dict, variant: str, runtime: str = "onnxruntime", batch: int = 1) -> float | None:
    for p in doc["points"]:
        if p["variant_name"] == variant and p["runtime"] == runtime and p["batch_size"] == batch and p["status"] == "ok":
            return p["p50_ms"]
    return None


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cold, doc = timed_run(Path(tmp))
        warm, _ = timed_run(Path(tmp))
    print(f"default run, cold cache: {cold:6.1f} s  ({cold / BUDGET_S:.2f} of the {BUDGET_S:.0f} s budget)")
    print(f"default run, warm cache: {warm:6.1f} s  ({warm / BUDGET_S:.2f} of the budget)")
    print(f"operating points: {len(doc['points'])}, failed: {doc['n_failed']}")
    dense = p50(doc, "dense")
    print("\nonnxruntime, batch 1, p50 speedup over dense fp32 (same run):")
    for name in sorted({p["variant_name"] for p in doc["points"]}):
        value = p50(doc, name)
        if value and dense:
            print(f"  {name:22s} p50 {value:7.3f} ms   x{dense / value:4.2f}")


if __name__ == "__main__":
    main()
