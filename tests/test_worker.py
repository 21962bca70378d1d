"""The performance pass, inline and in a fresh process, on a real ONNX artifact."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.measure.launch import measure
from harness.measure.worker import MeasureRequest, peak_rss_mb

RULE = {"warmup_runs": 2, "warmup_s": 0.0, "min_samples": 70, "min_duration_s": 0.0, "max_duration_s": 5.0}


def request(artifact, inputs, runtime="onnxruntime") -> MeasureRequest:
    return MeasureRequest(runtime, str(artifact), str(inputs), [1, 3], RULE, 1, "test")


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_every_batch_size_gets_raw_samples_and_stats(isolation, tiny_onnx, tiny_dataset, tmp_path):
    inputs = tmp_path / "x.npy"
    np.save(inputs, tiny_dataset.evaluation.x[:2])  # batch 3 is tiled from 2 images
    result = measure(request(tiny_onnx, inputs), isolation)
    assert [b["latency"]["batch_size"] for b in result["batches"]] == [1, 3]
    for b in result["batches"]:
        assert len(b["samples_ms"]) == b["latency"]["n_samples"] >= 70
        assert len(b["warmup_ms"]) == b["latency"]["n_warmup"] >= 2
        assert b["latency"]["p90_ms"] is not None and b["latency"]["p99_ms"] is None
        assert b["energy"]["energy_per_inference_mj"] is None or b["energy"]["scope"] == "cpu-package"
    if isolation == "process":
        assert 10 < result["peak_rss_mb"] < 2000
    else:
        assert result["peak_rss_mb"] is None and "inline" in result["peak_rss_unavailable_reason"]


def test_a_crashing_measuring_process_is_a_measurement_error(tmp_path):
    inputs = tmp_path / "x.npy"
    np.save(inputs, np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(MeasurementError, match="measuring process failed"):
        measure(request(tmp_path / "missing.onnx", inputs), "process")


def test_peak_rss_reads_the_high_water_mark_not_rusage(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t 900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 40000 kB\n")
    assert peak_rss_mb(status) == (50.0, None)
    status.write_text("Name:\tpython\n")
    value, reason = peak_rss_mb(status)
    assert value is None and "VmHWM" in reason
    value, reason = peak_rss_mb(tmp_path / "absent")
    assert value is None and "cannot read" in reason
