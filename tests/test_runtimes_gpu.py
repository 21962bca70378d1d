"""GPU runners (onnxruntime CUDA / TensorRT providers, torch CUDA eager / compile): they fail cleanly
at activation where there is no GPU build or device, refuse silent CPU fallback, and, on real
hardware (marked gpu / tensorrt / jetson), match the CPU runtimes on the same artifact."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from harness.errors import DeviceUnavailable, MissingDependency
from harness.runtimes import RUNTIMES
from harness.runtimes.onnxrt_gpu import OnnxRuntimeCudaRunner, OnnxRuntimeTensorRTRunner
from harness.runtimes.torch_cuda import (
    TorchCompileCudaRunner,
    TorchCudaGraphsRunner,
    TorchCudaRunner,
    timing_from_events,
)

GPU_RUNTIMES = ["tensorrt", "onnxruntime-cuda", "onnxruntime-tensorrt", "torch-cuda", "torch-cuda-compile",
                "torch-cuda-graphs"]


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"placeholder: activation fails before reading it")
    return path


class FakeOrt:
    """onnxruntime's surface the GPU runners use; ``used`` is what the session really runs on."""

    GraphOptimizationLevel = SimpleNamespace(ORT_ENABLE_ALL=99)

    def __init__(self, available, used):
        self.available, self.used, self.sessions = available, used, []

    def get_available_providers(self):
        return list(self.available)

    def SessionOptions(self):
        return SimpleNamespace()

    def InferenceSession(self, path, options, providers):
        self.sessions.append(providers)
        used = self.used
        return SimpleNamespace(get_providers=lambda: list(used),
                               get_inputs=lambda: [SimpleNamespace(name="input")],
                               run=lambda outputs, feed: [feed["input"].reshape(len(feed["input"]), -1)[:, :10]])


def test_every_gpu_runtime_is_registered_and_importing_them_pulls_in_no_gpu_library():
    assert set(GPU_RUNTIMES) <= set(RUNTIMES.names())
    code = (f"import sys; from harness.runtimes import RUNTIMES; [RUNTIMES.get(n) for n in {GPU_RUNTIMES!r}]; "
            "print(','.join(m for m in ('torch', 'onnxruntime', 'tensorrt', 'cuda', 'pycuda') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("runner_cls", [OnnxRuntimeCudaRunner, OnnxRuntimeTensorRTRunner])
def test_here_onnxruntime_gpu_runners_raise_missing_dependency_naming_onnxruntime_gpu(runner_cls, artifact):
    import onnxruntime

    if runner_cls.provider in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build has the provider")
    with pytest.raises(MissingDependency, match=f"onnxruntime-gpu \\({runner_cls.provider}\\)") as info:
        runner_cls(artifact).__enter__()
    assert "onnxruntime-gpu" in info.value.hint


@pytest.mark.parametrize("runner_cls", [OnnxRuntimeCudaRunner, OnnxRuntimeTensorRTRunner])
def test_a_session_that_fell_back_to_the_cpu_is_refused_not_labelled_gpu(runner_cls, artifact):
    ort = FakeOrt([runner_cls.provider, "CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"])
    with pytest.raises(DeviceUnavailable, match=f"fell back to CPUExecutionProvider instead of {runner_cls.provider}"):
        runner_cls(artifact, ort=ort).__enter__()


def test_tensorrt_provider_gets_engine_and_timing_caches_and_cuda_as_fallback(artifact, tmp_path):
    provider = OnnxRuntimeTensorRTRunner.provider
    ort = FakeOrt([provider, "CUDAExecutionProvider"], [provider, "CUDAExecutionProvider"])
    with OnnxRuntimeTensorRTRunner(artifact, ort=ort, cache_dir=tmp_path / "trt") as runner:
        y = runner.infer(np.ones((2, 1, 8, 8), np.float32))
    (name, options), (fallback, _) = ort.sessions[0]
    assert (name, fallback) == (provider, "CUDAExecutionProvider") and y.shape == (2, 10)
    assert options["trt_engine_cache_enable"] and options["trt_engine_cache_path"] == str(tmp_path / "trt")
    assert options["trt_timing_cache_enable"] and "trt_fp16_enable" not in options and "trt_int8_enable" not in options


@pytest.mark.parametrize("runner_cls", [TorchCudaRunner, TorchCompileCudaRunner, TorchCudaGraphsRunner])
def test_here_torch_cuda_runners_raise_device_unavailable_at_activation(runner_cls, artifact):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(DeviceUnavailable, match="torch sees no CUDA device"):
        runner_cls(artifact).__enter__()


class FakeEvent:
    """A CUDA event at a fixed device time (ms); ``elapsed_time`` as torch defines it."""

    def __init__(self, t_ms: float) -> None:
        self.t_ms = t_ms

    def elapsed_time(self, end: FakeEvent) -> float:
        return end.t_ms - self.t_ms


def test_a_query_is_split_into_enqueue_h2d_compute_and_d2h_from_its_events():
    timing = timing_from_events(0.0002, FakeEvent(10.0), FakeEvent(10.25), FakeEvent(11.75), FakeEvent(11.8))
    assert timing == pytest.approx({"enqueue_ms": 0.2, "h2d_ms": 0.25, "compute_ms": 1.5, "d2h_ms": 0.05})
    assert TorchCudaGraphsRunner.capabilities.cuda_graphs and not TorchCudaRunner.capabilities.cuda_graphs
    assert TorchCudaRunner.capabilities.gpu_timing


# ---------------------------------------------------------------------------- real hardware


@pytest.fixture(scope="module")
def cpu_reference(tiny_model, tiny_dataset, tmp_path_factory):
    """The tiny model's torch.export program and ONNX, and onnxruntime-CPU logits on 64 images."""
    from harness.export.onnx import export_onnx, export_program
    from harness.runtimes.onnxrt import OnnxRuntimeRunner

    out = tmp_path_factory.mktemp("gpu-parity")
    x = np.ascontiguousarray(tiny_dataset.evaluation.x[:64])
    program = export_program(tiny_model, x[:1], out / "model.pt2")
    export_onnx(program, x[:1], out / "model.onnx")
    with OnnxRuntimeRunner(out / "model.onnx") as runner:
        reference = np.concatenate([runner.infer(x[i:i + 8]) for i in range(0, 64, 8)])
    return SimpleNamespace(program=out / "model.pt2", onnx=out / "model.onnx", x=x, logits=reference, dir=out)


def assert_parity(runner, ref, atol):
    logits = np.concatenate([runner.infer(ref.x[i:i + 8]) for i in range(0, len(ref.x), 8)])
    assert (logits.argmax(1) == ref.logits.argmax(1)).mean() >= 0.98
    np.testing.assert_allclose(logits, ref.logits, atol=atol, rtol=atol)


@pytest.mark.gpu
@pytest.mark.parametrize("runner_cls", [TorchCudaRunner, TorchCompileCudaRunner, TorchCudaGraphsRunner])
def test_torch_cuda_runner_matches_onnxruntime_cpu_and_reports_event_time(runner_cls, cpu_reference):
    from harness.measure.latency import PROFILES

    with runner_cls(cpu_reference.program) as runner:
        assert_parity(runner, cpu_reference, atol=1e-2)
        assert runner.last_device_ms is not None and runner.last_device_ms > 0
        t = runner.last_timing_ms
        assert set(t) == {"enqueue_ms", "h2d_ms", "compute_ms", "d2h_ms"} and min(t.values()) >= 0
        piped = runner.pipelined_throughput(cpu_reference.x[:8], PROFILES["quick"])
        assert piped.n_queries >= 64 and piped.wall_s > 0 and piped.depth == 2
        assert runner.peak_gpu_mb() > 0


@pytest.mark.gpu
def test_the_measuring_worker_records_gpu_timing_for_torch_cuda(cpu_reference):
    from harness.measure.launch import measure
    from harness.measure.worker import MeasureRequest

    np.save(cpu_reference.dir / "x.npy", cpu_reference.x[:8])
    rule = {"warmup_runs": 5, "warmup_s": 0.1, "min_samples": 64, "min_duration_s": 0.2, "max_duration_s": 5.0}
    req = MeasureRequest("torch-cuda-graphs", str(cpu_reference.program), str(cpu_reference.dir / "x.npy"), [1, 8],
                         rule, None, "quick", scenarios=["single-stream", "offline"])
    result = measure(req, "process")
    for b in result["batches"]:
        g = b["gpu_timing"]
        assert g["cuda_graphs"] and g["n_queries"] == b["latency"]["n_samples"]
        assert 0 < g["compute_ms"] <= g["e2e_ms"] and g["pipelined_throughput_sps"] > 0
    assert result["memory"]["peak_gpu_mb"] > 0


@pytest.mark.gpu
def test_onnxruntime_cuda_provider_matches_onnxruntime_cpu(cpu_reference):
    with OnnxRuntimeCudaRunner(cpu_reference.onnx) as runner:
        assert_parity(runner, cpu_reference, atol=1e-3)


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_onnxruntime_tensorrt_provider_matches_onnxruntime_cpu(cpu_reference):
    with OnnxRuntimeTensorRTRunner(cpu_reference.onnx, cache_dir=cpu_reference.dir / "ort-trt") as runner:
        assert_parity(runner, cpu_reference, atol=1e-2)


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_real_engine_build_inspect_and_run_match_onnxruntime_cpu(cpu_reference):
    from harness.export.tensorrt import EngineSpec, build_engine
    from harness.runtimes.tensorrt import TensorRTRunner, default_cuda_backend

    device = default_cuda_backend().open()
    build = build_engine(cpu_reference.onnx, EngineSpec((1, 8)), cpu_reference.dir / "engines", device_name=device)
    assert build.layers["n_layers"] > 0 and build.timing_cache.exists()
    with TensorRTRunner(build.path) as runner:
        assert_parity(runner, cpu_reference, atol=1e-2)  # fp32 convolutions may run in TF32
        assert runner.last_device_ms is not None and runner.last_device_ms > 0
    again = build_engine(cpu_reference.onnx, EngineSpec((1, 8)), cpu_reference.dir / "engines", device_name=device)
    assert again.cache_hit and again.path == build.path


@pytest.mark.jetson
def test_detection_on_this_jetson_names_a_profile_whose_rail_map_fits_the_board():
    from harness.meters.rails import board_rails
    from harness.targets import detect_target, load_target

    found = detect_target()
    assert found.target is not None and found.target.startswith("jetson-"), found.reason
    profile = load_target(found.target)
    assert board_rails(found.board_model) == board_rails(profile.energy.rail_map)
