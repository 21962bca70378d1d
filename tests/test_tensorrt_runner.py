"""The TensorRT runner: execute_async_v3 with tensor addresses, driven through FakeTensorRT and a
fake cuda-python runtime; and its clean failure on this machine (no TensorRT, no GPU)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import DeviceUnavailable, InputError, MissingDependency
from harness.export.tensorrt import EngineSpec, build_engine
from harness.runtimes import RUNTIMES
from harness.runtimes.tensorrt import CudaPythonBackend, TensorRTRunner, default_cuda_backend
from tests.test_tensorrt_builder import write_onnx
from tests.test_tensorrt_fake import FakeCudaRuntime, FakeTensorRT


@pytest.fixture
def engine(tmp_path):
    onnx_path = write_onnx(tmp_path / "model.onnx")
    return build_engine(onnx_path, EngineSpec((1, 8)), tmp_path / "cache", device_name="Fake GPU",
                        trt=FakeTensorRT("10.3.0")).path


def fakes(version="10.3.0", n_devices=1):
    cudart = FakeCudaRuntime(n_devices)
    return FakeTensorRT(version, cuda=cudart), cudart


def test_tensorrt_runtime_is_registered_and_runs_engine_files_not_onnx():
    assert "tensorrt" in RUNTIMES
    assert TensorRTRunner.artifact_format == "tensorrt-engine"


@pytest.mark.parametrize("version", ["10.3.0", "11.4.1"])
def test_runner_copies_in_executes_on_its_stream_and_copies_out(engine, version):
    trt, cudart = fakes(version)
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    with TensorRTRunner(engine, trt=trt, cuda=CudaPythonBackend(cudart)) as runner:
        y = runner.infer(x)
    np.testing.assert_array_equal(y, 2 * x.reshape(1, -1)[:, :10])
    assert trt.names("execute_async_v3") == [("stream-1",)]
    assert trt.names("set_tensor_address")[-2:] == [("input",), ("logits",)]
    assert runner.last_device_ms == 0.25 and runner.device_name == "Fake GPU 80GB"


def test_runner_switches_to_the_profile_of_each_batch_size(engine):
    trt, cudart = fakes()
    x = np.arange(8 * 64, dtype=np.float32).reshape(8, 1, 8, 8)
    with TensorRTRunner(engine, trt=trt, cuda=CudaPythonBackend(cudart)) as runner:
        np.testing.assert_array_equal(runner.infer(x), 2 * x.reshape(8, -1)[:, :10])
        np.testing.assert_array_equal(runner.infer(x[:1]), 2 * x[:1].reshape(1, -1)[:, :10])
    assert [p[0] for p in trt.names("set_optimization_profile_async")] == [1, 0]


def test_runner_refuses_a_batch_outside_every_profile_naming_them(engine):
    trt, cudart = fakes()
    with TensorRTRunner(engine, trt=trt, cuda=CudaPythonBackend(cudart)) as runner:
        with pytest.raises(InputError, match=r"outside every optimization profile \(\[1, 1, 8, 8\]"):
            runner.infer(np.zeros((4, 1, 8, 8), np.float32))


def test_runner_frees_device_memory_and_its_stream_on_exit(engine):
    trt, cudart = fakes()
    with TensorRTRunner(engine, trt=trt, cuda=CudaPythonBackend(cudart)) as runner:
        runner.infer(np.zeros((8, 1, 8, 8), np.float32))
        assert cudart.memory
    assert cudart.memory == {} and cudart.pinned == {} and ("cudaStreamDestroy", "stream-1") in cudart.calls


def test_runner_without_a_visible_gpu_raises_device_unavailable(engine):
    trt, cudart = fakes(n_devices=0)
    with pytest.raises(DeviceUnavailable, match="no CUDA device"):
        TensorRTRunner(engine, trt=trt, cuda=CudaPythonBackend(cudart)).__enter__()


def test_an_engine_built_elsewhere_is_an_input_error_naming_version_and_device(tmp_path):
    alien = tmp_path / "other.engine"
    alien.write_bytes(b"not an engine for this GPU")
    trt, cudart = fakes()
    with pytest.raises(InputError, match="cannot deserialize.*10.3.0 on Fake GPU 80GB"):
        TensorRTRunner(alien, trt=trt, cuda=CudaPythonBackend(cudart)).__enter__()


def test_here_the_runner_fails_at_activation_with_missing_tensorrt_not_at_import(engine):
    runner = RUNTIMES.get("tensorrt")(engine)  # constructing needs nothing
    with pytest.raises(MissingDependency, match="tensorrt is not installed"):
        runner.__enter__()


def test_here_no_cuda_backend_is_installed_and_the_hint_names_cuda_python_and_pycuda():
    with pytest.raises(MissingDependency, match="cuda-python") as info:
        default_cuda_backend()
    assert "pycuda" in info.value.hint


@pytest.mark.parametrize("version", ["10.3.0", "11.4.1"])
def test_runner_exposes_the_engine_activation_memory(engine, version):
    from tests.test_tensorrt_fake import FAKE_DEVICE_MEMORY_BYTES

    trt, cudart = fakes(version)
    with TensorRTRunner(engine, trt=trt, cuda=CudaPythonBackend(cudart)) as runner:
        assert runner.activation_mb == FAKE_DEVICE_MEMORY_BYTES / 2**20 and runner.activation_unavailable_reason is None


def test_engine_device_memory_falls_back_and_says_why_when_absent():
    from types import SimpleNamespace

    from harness.runtimes.tensorrt import engine_device_memory_mb

    assert engine_device_memory_mb(SimpleNamespace(device_memory_size=2**21)) == (2.0, None)
    assert engine_device_memory_mb(SimpleNamespace(get_device_memory_size_v2=None, device_memory_size_v2=lambda: 2**20)) \
        == (1.0, None)
    value, reason = engine_device_memory_mb(SimpleNamespace())
    assert value is None and "device_memory_size_v2" in reason
