"""trtexec-style GPU timing arithmetic and warnings on recorded numbers; the real path on a GPU."""

from __future__ import annotations

import pytest

from harness.measure.gpu_timing import Pipelined, gpu_warnings, summarize_gpu_timing


def q(enqueue, h2d, compute, d2h):
    return {"enqueue_ms": enqueue, "h2d_ms": h2d, "compute_ms": compute, "d2h_ms": d2h}


def test_medians_e2e_and_pipelined_throughput():
    timings = [q(0.1, 0.05, 1.0 + i / 10_000, 0.02) for i in range(100)]
    t = summarize_gpu_timing(timings, batch_size=8, pipelined=Pipelined(n_queries=500, wall_s=0.5, depth=2),
                             cuda_graphs=False)
    assert t.n_queries == 100 and t.compute_ms == pytest.approx(1.0049)  # nearest rank 50 of 1.0000..1.0099
    assert t.e2e_ms == pytest.approx(0.05 + 1.0049 + 0.02)
    assert t.compute_p90_ms == pytest.approx(1.0089)
    assert t.pipelined_throughput_sps == pytest.approx(8 * 500 / 0.5) and t.pipeline_depth == 2
    assert t.warnings == [] and t.compute_cv < 0.01


def test_trtexec_warnings_on_recorded_numbers():
    assert gpu_warnings(enqueue_ms=0.9, h2d_ms=0.1, compute_ms=1.0, d2h_ms=0.1, compute_cv=0.01)[0].startswith(
        "enqueue-bound")
    assert gpu_warnings(enqueue_ms=0.8, h2d_ms=0.1, compute_ms=1.0, d2h_ms=0.1, compute_cv=0.01) == []
    both = gpu_warnings(enqueue_ms=None, h2d_ms=1.0, compute_ms=1.0, d2h_ms=2.0, compute_cv=None)
    assert [w.split(":")[0] for w in both] == ["transfer-bound", "transfer-bound"] and "D2H" in both[1]
    assert gpu_warnings(enqueue_ms=0.1, h2d_ms=0.1, compute_ms=1.0, d2h_ms=0.1, compute_cv=0.03)[0].startswith(
        "unstable")


def test_missing_figures_are_reasons():
    t = summarize_gpu_timing([q(None, 0.1, 1.0, 0.1)] * 10, batch_size=1, pipelined=None, cuda_graphs=True)
    assert t.enqueue_ms is None and t.compute_p90_ms is None and t.pipelined_throughput_sps is None
    assert set(t.unavailable_reasons) == {"enqueue_ms", "compute_p90_ms", "pipelined_throughput_sps"}
    assert t.cuda_graphs and t.compute_cv == 0.0
    with pytest.raises(ValueError):
        summarize_gpu_timing([], batch_size=1, pipelined=None, cuda_graphs=False)
