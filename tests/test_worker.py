"""The performance pass, inline and in a fresh process, on a real ONNX artifact."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.measure.launch import measure
from harness.measure.worker import MeasureRequest, peak_rss_mb

RULE = {"warmup_runs": 2, "warmup_s": 0.0, "min_samples": 70, "min_duration_s": 0.0, "max_duration_s": 5.0,
        "window_tolerance": 10.0, "max_robust_cv": None}  # convergence is tested in test_latency


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


def test_the_timed_artifact_must_be_the_scored_one(tiny_onnx, tiny_dataset, tmp_path):
    inputs = tmp_path / "x.npy"
    np.save(inputs, tiny_dataset.evaluation.x[:2])
    req = replace(request(tiny_onnx, inputs), expected_sha256="0" * 64)
    with pytest.raises(MeasurementError, match="the artifact timed is not the one scored"):
        measure(req, "inline")


def test_a_point_records_sha_output_check_memory_stack_and_device_state(tiny_onnx, tiny_dataset, tmp_path):
    from harness.measure.worker import file_sha256
    from harness.runtimes.onnxrt import OnnxRuntimeRunner

    x = tiny_dataset.evaluation.x[:4]
    inputs, ref = tmp_path / "x.npy", tmp_path / "ref.npy"
    np.save(inputs, x)
    with OnnxRuntimeRunner(tiny_onnx, threads=1) as runner:
        np.save(ref, runner.infer(x))
    sysfs = tmp_path / "sys"
    gov = sysfs / "devices/system/cpu/cpu0/cpufreq"
    gov.mkdir(parents=True)
    (gov / "scaling_governor").write_text("powersave\n")
    sha = file_sha256(tiny_onnx)
    req = replace(request(tiny_onnx, inputs), expected_sha256=sha, reference_logits_npy=str(ref),
                  scenarios=["single-stream", "offline"], sysfs_root=str(sysfs), energy_meter="null")
    result = measure(req, "process")
    one, three = result["batches"]
    assert one["latency"]["scenario"] == "single-stream" and three["latency"]["headline_metric"] == "throughput_sps"
    assert one["latency"]["timed_artifact_sha256"] == sha
    assert three["latency"]["output_check_n"] == 3  # batch 3 is tiled from the 4 scored rows' first 3
    assert three["latency"]["output_check_argmax_agreement"] == 1.0
    assert three["latency"]["output_check_max_abs_diff"] < 1e-4
    assert one["latency"]["stability"] == "converged" and one["latency"]["p50_ci_ms"] is not None
    assert "powersave" in one["device_state"]["warnings"][0]
    assert one["device_state"]["cpu_governors"] == {"cpu0": "powersave"}
    assert "thermal" in one["device_state"]["unavailable_reasons"]
    assert one["energy"]["energy_per_inference_mj"] is None and "switched off" in one["energy"]["unavailable_reason"]
    mem = result["memory"]
    assert 0 < mem["rss_before_load_mb"] <= mem["rss_after_load_mb"] <= mem["peak_rss_mb"]
    assert mem["runtime_load_mb"] == pytest.approx(mem["rss_after_load_mb"] - mem["rss_before_load_mb"])
    assert mem["inference_rss_growth_mb"] >= 0
    assert 0 < mem["weights_mb"] < 1 and mem["activation_mb"] is None
    assert set(mem["unavailable_reasons"]) == {"activation_mb", "peak_gpu_mb", "process_gpu_mb", "system_memory_delta_mb"}
    assert 0 < mem["sparse_weights_mb"] <= mem["weights_mb"] and mem["sparse_weights_format"] == "bitmask+values"


def test_output_check_by_hand():
    from harness.measure.worker import output_check

    ref = np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    got = ref + np.array([[0.0, 0.0], [0.0, 2.5], [0.0, 0.0]])  # the second row's argmax flips
    check = output_check(got, ref)
    assert check["output_check_n"] == 3
    assert check["output_check_argmax_agreement"] == pytest.approx(2 / 3)
    assert check["output_check_max_abs_diff"] == pytest.approx(2.5)
    assert "no reference" in output_check(got, None)["output_check_unavailable_reason"]


def test_clock_lock_is_recorded_and_released_even_when_the_measurement_raises(tiny_onnx, tiny_dataset, tmp_path,
                                                                              monkeypatch):
    from contextlib import contextmanager

    import harness.measure.clock_lock as clock_lock_module

    inputs = tmp_path / "x.npy"
    np.save(inputs, tiny_dataset.evaluation.x[:2])
    req = replace(request(tiny_onnx, inputs), lock_clocks=True, energy_meter="null", sysfs_root=str(tmp_path / "sys"))
    result = measure(req, "inline")  # a CPU runtime: nothing to lock, a warning says so
    state = result["batches"][0]["device_state"]
    assert state["clocks_locked"] is False and state["clock_lock"]["method"] is None
    assert any(w.startswith("clock lock:") and "CPU governor" in w for w in state["warnings"])

    events = []

    @contextmanager
    def fake_lock(requested, **kwargs):
        events.append(("lock", kwargs["kind"]))
        try:
            yield clock_lock_module.ClockLockState(requested, locked=True, method="fake")
        finally:
            events.append(("restore",))

    monkeypatch.setattr(clock_lock_module, "clock_lock", fake_lock)
    np.save(inputs, np.zeros((2, 3, 5, 5), np.float32))  # the wrong shape: the runtime raises mid-measurement
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    with pytest.raises(InvalidArgument):  # what onnxruntime raises for an input of the wrong shape
        measure(req, "inline")
    assert events == [("lock", "cpu"), ("restore",)]
