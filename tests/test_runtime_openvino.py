"""The openvino runtime: the harness's fp32 and int8 QDQ ONNX files on OpenVINO's CPU plugin.

Logits agree with onnxruntime on the same files, a sweep produces scored and timed OpenVINO
points, and without openvino the runtime says why in one line. The tests that run OpenVINO are
skipped when it is not installed (the availability test runs everywhere).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from harness.runtimes import RUNTIMES, runtime_availability
from tests.conftest import tiny_experiment


def _logits(runtime: str, path, x: np.ndarray, threads: int = 1) -> np.ndarray:
    from harness.stages.score import evaluate

    return evaluate(RUNTIMES.get(runtime), path, x, threads)


def test_openvino_is_registered_as_an_onnx_cpu_runtime():
    cls = RUNTIMES.get("openvino")
    assert (cls.name, cls.artifact_format, cls.device_kind) == ("openvino", "onnx", "cpu")
    assert not any(asdict(cls.capabilities).values())  # no GPU hooks


def test_unavailable_without_openvino_in_one_line(monkeypatch, tmp_path):
    from harness import deps
    from harness.errors import MissingDependency

    real = deps.is_available.__wrapped__
    monkeypatch.setattr(deps, "is_available", lambda module: False if module == "openvino" else real(module))
    reason = runtime_availability(["openvino"])["openvino"]
    assert reason == "openvino is not installed (pip install 'harness[openvino]')"
    assert "\n" not in reason
    (tmp_path / "model.onnx").write_bytes(b"")  # never read: the missing library is found first
    with pytest.raises(MissingDependency, match="needs openvino") as info:
        with RUNTIMES.get("openvino")(tmp_path / "model.onnx", threads=1):
            pass
    assert "pip install 'harness[openvino]'" in str(info.value)


def test_the_x86_cpu_profile_offers_openvino():
    from harness.experiment import load_experiment
    from harness.targets import check_target, load_target

    assert "openvino" in load_target("x86-cpu").runtimes
    check_target(load_experiment(None, {"runtimes": ["onnxruntime", "openvino"]}), "x86-cpu")


def test_compile_config_carries_the_harness_threads():
    from harness.runtimes.openvino import compile_config

    assert compile_config(2) == {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                                 "ENABLE_CPU_PINNING": False, "INFERENCE_NUM_THREADS": 2}
    assert "INFERENCE_NUM_THREADS" not in compile_config(None)


def test_fp32_logits_match_onnxruntime_at_every_batch(tiny_onnx, tiny_dataset):
    pytest.importorskip("openvino", reason="openvino is not installed (pip install 'harness[openvino]')")
    x = tiny_dataset.evaluation.x[:37]
    reference = _logits("onnxruntime", tiny_onnx, x)
    assert _logits("openvino", tiny_onnx, x).dtype == np.float32
    np.testing.assert_allclose(_logits("openvino", tiny_onnx, x), reference, rtol=1e-4, atol=1e-4)
    with RUNTIMES.get("openvino")(tiny_onnx, threads=1) as runner:  # one static compile per batch size
        for b in (1, 8, 1):
            np.testing.assert_allclose(runner.infer(x[:b]), reference[:b], rtol=1e-4, atol=1e-4)
        assert sorted(runner._requests) == [(1, *x.shape[1:]), (8, *x.shape[1:])]
        compiled = runner._requests[(1, *x.shape[1:])].get_compiled_model()
        assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
        assert str(compiled.get_property("PERFORMANCE_HINT")) == "LATENCY" and compiled.get_property("NUM_STREAMS") == 1
        assert compiled.get_property("ENABLE_CPU_PINNING") is False


def test_int8_qdq_logits_match_onnxruntime(tiny_onnx, tiny_dataset, tmp_path):
    pytest.importorskip("openvino", reason="openvino is not installed (pip install 'harness[openvino]')")
    from harness.compress.quantize import quantize_int8_static
    from harness.config import QuantSpec

    int8 = tmp_path / "model.int8.onnx"
    quantize_int8_static(tiny_onnx, int8, tiny_dataset.calibration.x[:64], QuantSpec(), reduce_range=True)
    x = tiny_dataset.evaluation.x
    reference, logits = _logits("onnxruntime", int8, x), _logits("openvino", int8, x)
    # int8 kernels round differently between runtimes: logits agree to a few quantization steps
    scale = float(np.abs(reference).max())
    assert float(np.abs(logits - reference).max()) < 0.05 * scale
    assert float(np.mean(logits.argmax(1) == reference.argmax(1))) >= 0.98


def test_unreadable_file_is_one_line_naming_it(tmp_path):
    pytest.importorskip("openvino", reason="openvino is not installed (pip install 'harness[openvino]')")
    from harness.errors import InputError

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(InputError, match=r"ONNX file .*bad\.onnx: openvino cannot read it") as info:
        with RUNTIMES.get("openvino")(bad, threads=1):
            pass
    assert "\n" not in str(info.value)


def test_sweep_produces_scored_and_timed_openvino_points(tmp_path):
    pytest.importorskip("openvino", reason="openvino is not installed (pip install 'harness[openvino]')")
    from harness.experiment import load_experiment
    from harness.pipeline import run_experiment

    (tmp_path / "exp.toml").write_text(tiny_experiment(
        "tiny-openvino", top='target = "x86-cpu"', sections='[[quantize]]\napply_to = ["dense"]',
    ).replace('runtimes = ["onnxruntime"]', 'runtimes = ["onnxruntime", "openvino"]'))
    report = run_experiment(load_experiment(tmp_path / "exp.toml"), results_dir=tmp_path / "r")
    points = {(p.variant_name, p.runtime): p for p in report.points}
    for variant in ("dense", "dense+int8"):
        ov, ort = points[(variant, "openvino")], points[(variant, "onnxruntime")]
        assert ov.artifact.sha256 == ort.artifact.sha256  # the same file on both runtimes
        assert ov.accuracy is not None and ov.latency is not None and ov.latency.p50_ms > 0
        assert abs(ov.accuracy.top1 - ort.accuracy.top1) <= 0.02
        assert ov.latency.output_check_argmax_agreement == 1.0
