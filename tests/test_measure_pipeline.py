"""A run's points carry scenario, stability, intervals, the timed==scored check, memory stack and state."""

from __future__ import annotations

from harness.experiment import load_experiment
from harness.pipeline import run_experiment
from harness.store import open_store
from tests.conftest import tiny_experiment


def test_points_carry_the_measurement_record_and_read_back_from_the_store(tmp_path):
    (tmp_path / "exp.toml").write_text(tiny_experiment(
        "tiny-measure",
        measure='scenarios = ["single-stream", "offline"]\noffline_batch = 4\nmin_duration_s = 0.1\n'
                'window_tolerance = 10.0\nbootstrap_resamples = 200\n[selection]\nbatch_size = 1',
    ))
    spec = load_experiment(tmp_path / "exp.toml")
    report = run_experiment(spec, results_dir=tmp_path / "r")
    points = {p.batch_size: p for p in report.points if p.variant_name == "dense"}
    single, offline = points[1], points[4]
    assert (single.latency.scenario, single.latency.headline_metric) == ("single-stream", "p90_ms")
    assert (offline.latency.scenario, offline.latency.headline_metric) == ("offline", "throughput_sps")
    for p in (single, offline):
        lat = p.latency
        assert lat.stability in {"converged", "unstable"} and (lat.stability == "converged") == (lat.unstable_reason is None)
        assert lat.p50_ci_ms[0] <= lat.p50_ms <= lat.p50_ci_ms[1] and lat.bootstrap_resamples == 200
        assert lat.timed_artifact_sha256 == p.artifact.sha256
        assert lat.output_check_argmax_agreement == 1.0 and lat.output_check_n == min(p.batch_size, 8)
        assert p.memory.weights_mb > 0 and p.memory.peak_rss_mb >= p.memory.rss_after_load_mb
        assert p.device_state is not None and p.gpu_timing is None
        assert p.energy.meter is not None
    store = open_store(str(tmp_path / "r" / "harness.db"))
    try:
        stored = {p.point_id: p for p in store.operating_points(report.run_id)}
    finally:
        store.close()
    assert stored[single.point_id].latency == single.latency
    assert stored[single.point_id].memory == single.memory and stored[single.point_id].device_state == single.device_state
