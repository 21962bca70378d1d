"""GPU timing as trtexec splits it: enqueue, H2D, compute, D2H per query, with its warnings.

The runner records CUDA events around each stage of every query (see
:class:`harness.runtimes.torch_cuda.TorchCudaRunner`); this module only does arithmetic
on those numbers, so it is tested on recorded values without a GPU. Warnings follow
trtexec (shared/research/measurement.md 2.1):

* enqueue-bound: median enqueue time > 0.8 x median compute time: the host cannot launch
  work as fast as the GPU finishes it (CUDA graphs help);
* transfer-bound: median H2D or D2H time >= median compute time: copies dominate;
* unstable: GPU compute CV > 2.5 % (lock clocks, check for other work on the GPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.measure.latency import MIN_SAMPLES_FOR, nearest_rank
from harness.records import GpuTiming

ENQUEUE_BOUND_RATIO = 0.8
COMPUTE_CV_LIMIT = 0.025


@dataclass(frozen=True)
class Pipelined:
    """A separate run with ``depth`` queries in flight: ``n_queries`` finished in ``wall_s``."""

    n_queries: int
    wall_s: float
    depth: int


def gpu_warnings(*, enqueue_ms: float | None, h2d_ms: float, compute_ms: float, d2h_ms: float,
                 compute_cv: float | None) -> list[str]:
    """trtexec's diagnostics on the medians of one measurement."""
    warnings = []
    if enqueue_ms is not None and enqueue_ms > ENQUEUE_BOUND_RATIO * compute_ms:
        warnings.append(
            f"enqueue-bound: median enqueue {enqueue_ms:.4g} ms > {ENQUEUE_BOUND_RATIO} x median GPU compute "
            f"{compute_ms:.4g} ms; the host launches slower than the GPU computes (try CUDA graphs)"
        )
    for name, value in (("H2D", h2d_ms), ("D2H", d2h_ms)):
        if value >= compute_ms:
            warnings.append(
                f"transfer-bound: median {name} {value:.4g} ms >= median GPU compute {compute_ms:.4g} ms; "
                "copies, not the model, set the end-to-end latency"
            )
    if compute_cv is not None and compute_cv > COMPUTE_CV_LIMIT:
        warnings.append(
            f"unstable: GPU compute time varies {compute_cv:.1%} (> {COMPUTE_CV_LIMIT:.1%}); lock the clocks "
            "and check for other work on the GPU"
        )
    return warnings


def _median(values: Sequence[float]) -> float:
    return nearest_rank(sorted(values), 50)


def summarize_gpu_timing(
    timings: Sequence[dict[str, float]], *, batch_size: int, pipelined: Pipelined | None, cuda_graphs: bool
) -> GpuTiming:
    """Medians of per-query ``{enqueue_ms, h2d_ms, compute_ms, d2h_ms}`` plus the pipelined throughput."""
    if not timings:
        raise ValueError("no GPU timings were recorded")
    col = {k: [t[k] for t in timings if t.get(k) is not None] for k in ("enqueue_ms", "h2d_ms", "compute_ms", "d2h_ms")}
    compute = np.asarray(col["compute_ms"], dtype=float)
    e2e = [t["h2d_ms"] + t["compute_ms"] + t["d2h_ms"] for t in timings]
    cv = float(compute.std(ddof=1) / compute.mean()) if len(compute) > 1 and compute.mean() > 0 else None
    med = {k: _median(v) if v else None for k, v in col.items()}
    h2d_ms, compute_ms, d2h_ms = med["h2d_ms"], med["compute_ms"], med["d2h_ms"]
    if h2d_ms is None or compute_ms is None or d2h_ms is None:
        raise ValueError("GPU timings without h2d_ms, compute_ms and d2h_ms")
    reasons = {}
    if med["enqueue_ms"] is None:
        reasons["enqueue_ms"] = "the runner recorded no enqueue time"
    p90 = nearest_rank(sorted(compute), 90) if len(compute) >= MIN_SAMPLES_FOR[90] else None
    if p90 is None:
        reasons["compute_p90_ms"] = f"too few samples: {len(compute)} < {MIN_SAMPLES_FOR[90]} needed for p90"
    throughput = None
    if pipelined is None:
        reasons["pipelined_throughput_sps"] = "the runner has no pipelined mode"
    elif pipelined.wall_s > 0:
        throughput = batch_size * pipelined.n_queries / pipelined.wall_s
    return GpuTiming(
        n_queries=len(timings),
        compute_ms=compute_ms,
        e2e_ms=_median(e2e),
        h2d_ms=h2d_ms,
        d2h_ms=d2h_ms,
        enqueue_ms=med["enqueue_ms"],
        compute_p90_ms=p90,
        compute_cv=cv,
        pipelined_throughput_sps=throughput,
        pipeline_depth=pipelined.depth if pipelined else None,
        cuda_graphs=cuda_graphs,
        warnings=gpu_warnings(enqueue_ms=med["enqueue_ms"], h2d_ms=h2d_ms, compute_ms=compute_ms,
                              d2h_ms=d2h_ms, compute_cv=cv),
        unavailable_reasons=reasons,
    )
