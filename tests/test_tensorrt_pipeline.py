"""`runtimes = ["tensorrt"]` inside `harness run`: engines built on the device from each variant's
ONNX (the TensorRT-placement QDQ file for int8), cached, run by the TensorRT runner, and what the
engine inspector says stored on the point. TensorRT and CUDA are the named fakes of
tests/test_tensorrt_fake.py (the real ones cannot be installed here)."""

from __future__ import annotations

import json

import pytest

from harness.experiment import load_experiment
from harness.export.tensorrt import engine_source
from harness.pipeline import run_experiment
from harness.runtimes.tensorrt import CudaPythonBackend
from harness.store import open_store
from tests.conftest import tiny_experiment
from tests.test_tensorrt_fake import DATA, FakeCudaRuntime, FakeTensorRT

SPARSE_LOG = (DATA / "build_log_sparse.txt").read_text().splitlines()


@pytest.fixture
def fake_tensorrt(monkeypatch):
    """Every TensorRT and CUDA entry point of the harness answered by the fakes; yields the fake module."""
    cudart = FakeCudaRuntime()
    trt = FakeTensorRT("10.3.0", cuda=cudart, build_log=SPARSE_LOG)
    monkeypatch.setattr("harness.export.tensorrt.load_tensorrt", lambda: trt)
    monkeypatch.setattr("harness.runtimes.tensorrt.default_cuda_backend", lambda: CudaPythonBackend(cudart))
    return trt


def _spec(tmp_path):
    toml = tiny_experiment(
        "tiny-trt",
        top='runtimes = ["onnxruntime", "tensorrt"]',
        sections='[[quantize]]\napply_to = ["dense"]\n[[quantize]]\napply_to = ["dense"]\ntarget = "tensorrt"\n',
        measure='batch_sizes = [1, 4]\nmin_duration_s = 0.05\nisolation = "inline"',
    )
    path = tmp_path / "exp.toml"
    path.write_text(toml.replace('runtimes = ["onnxruntime"]\n', "", 1))
    return load_experiment(path)


def test_tensorrt_points_run_engines_built_from_each_variants_onnx_and_store_the_inspector_counts(
        tmp_path, fake_tensorrt):
    report = run_experiment(_spec(tmp_path), results_dir=tmp_path / "results")

    trt_points = {p.point_id: p for p in report.points if p.runtime == "tensorrt"}
    names = {p.variant_name for p in trt_points.values()}
    assert names == {"dense", "dense+int8-trt"}, names  # onnxruntime's int8 ONNX gets no engine ...
    assert any("dense+int8 is not run on tensorrt" in n and "target = \"tensorrt\"" in n for n in report.notes)
    assert all(p.status == "ok" for p in trt_points.values()), [p.error for p in trt_points.values()]
    assert {p.batch_size for p in trt_points.values()} == {1, 4}
    ort = [p for p in report.points if p.runtime == "onnxruntime"]
    assert ort and all(1.0 >= p.accuracy.top5 >= p.accuracy.top1 for p in ort)  # ten classes: top-5 recorded

    int8 = trt_points["dense+int8-trt@tensorrt/bs1"]
    recorded = json.loads((DATA / "engine_info_trt10.json").read_text())
    assert int8.engine.source_format == "onnx-trt-qdq" and int8.engine.trt_version == "10.3.0"
    assert int8.engine.device == "Fake GPU 80GB" and int8.engine.network_flags == ["STRONGLY_TYPED"]
    assert 0 < int8.engine.n_layers <= len(recorded["Layers"])
    assert int8.engine.n_sparse_eligible is not None  # the "(Sparsity)" build-log lines were read
    assert int8.artifact.format == "tensorrt-engine" and int8.artifact.path.endswith(".engine")
    assert int8.artifact.n_quantized_nodes > 0  # read from the QDQ file the engine was built from
    dense = trt_points["dense@tensorrt/bs1"]
    assert dense.engine.source_format == "onnx" and dense.engine.cache_key != int8.engine.cache_key
    # the engine ran: the fake's logits (2 * the first ten inputs) differ from the model's
    assert dense.accuracy.top1 != report.points[0].accuracy.top1 or dense.accuracy.top1 < 0.5
    shapes = [c[2] for c in fake_tensorrt.calls if c[0] == "set_input_shape"]
    assert (1, 1, 8, 8) in shapes and (4, 1, 8, 8) in shapes  # one profile per measured batch size

    st = open_store(str(tmp_path / "results" / "harness.db"))
    try:
        stored = {p.point_id: p for p in st.operating_points(report.run_id)}
    finally:
        st.close()
    assert stored["dense+int8-trt@tensorrt/bs1"].engine == int8.engine  # read back from the store


def test_a_second_run_reuses_the_cached_engines(tmp_path, fake_tensorrt):
    run_experiment(_spec(tmp_path), results_dir=tmp_path / "results")
    builds = len(fake_tensorrt.names("build_serialized_network"))
    report = run_experiment(_spec(tmp_path), results_dir=tmp_path / "results")
    assert len(fake_tensorrt.names("build_serialized_network")) == builds
    assert all(p.engine.cache_hit for p in report.points if p.runtime == "tensorrt")


def test_without_a_gpu_the_tensorrt_points_fail_with_the_reason_and_the_others_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.export.tensorrt.load_tensorrt", lambda: FakeTensorRT("10.3.0"))
    monkeypatch.setattr("harness.runtimes.tensorrt.default_cuda_backend",
                        lambda: CudaPythonBackend(FakeCudaRuntime(n_devices=0)))
    report = run_experiment(_spec(tmp_path), results_dir=tmp_path / "results")
    failed = [p for p in report.points if p.runtime == "tensorrt"]
    assert failed and all(p.status == "failed" and "no CUDA device" in p.error for p in failed)
    assert all(p.status == "ok" for p in report.points if p.runtime == "onnxruntime")


@pytest.mark.parametrize(("files", "recipe", "expected"), [
    ({"onnx": "m.onnx"}, None, "onnx"),
    ({"onnx": "m.onnx"}, "fp16", "onnx"),
    ({"onnx-trt-qdq": "m.trt-qdq.onnx"}, "int8-trt", "onnx-trt-qdq"),
    ({"onnx": "m.onnx"}, "int8", None),
    ({"onnx": "m.onnx"}, "int8-dynamic", None),
    ({"torch.export": "m.pt2"}, None, None),
])
def test_engine_source_picks_the_file_tensorrt_can_build_and_says_why_not_otherwise(files, recipe, expected):
    source, why_not = engine_source(files, recipe)
    assert source == expected
    assert (why_not is None) == (expected is not None)


class _StaticProfileRunner:
    """A named fake runner that, like a static-profile engine, accepts batches of exactly four."""

    seen: list[int] = []

    def __init__(self, artifact, threads=None) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def set_input_shape(self, chw) -> None:
        pass

    def evaluation_batch(self, preferred: int):
        return 4, True

    def infer(self, x):
        assert len(x) == 4, len(x)
        self.seen.append(len(x))
        return x.reshape(len(x), -1)[:, :3] * 2


def test_evaluation_pads_the_last_chunk_for_static_profile_engines_and_drops_the_padding(tmp_path):
    import numpy as np

    from harness.pipeline import evaluate

    x = np.arange(7 * 1 * 2 * 2, dtype=np.float32).reshape(7, 1, 2, 2)
    logits = evaluate(_StaticProfileRunner, tmp_path / "engine", x, threads=1)
    assert logits.shape == (7, 3)
    np.testing.assert_array_equal(logits, x.reshape(7, -1)[:, :3] * 2)
    assert _StaticProfileRunner.seen == [4, 4]


def test_tensorrt_section_options_reach_the_builder(tmp_path, fake_tensorrt):
    spec = _spec(tmp_path).model_copy(update={"tensorrt": _spec(tmp_path).tensorrt.model_copy(
        update={"workspace_mb": 64, "builder_optimization_level": 2})})
    run_experiment(spec, results_dir=tmp_path / "results")
    limits = fake_tensorrt.names("set_memory_pool_limit")
    assert limits and all(size == 64 * 2**20 for _, size in limits)


def test_a_dla_core_without_a_target_is_refused_naming_the_key(tmp_path):
    from harness.errors import ConfigError

    path = tmp_path / "exp.toml"
    path.write_text(tiny_experiment("dla", sections="[tensorrt]\ndla_core = 0\n"))
    with pytest.raises(ConfigError, match="tensorrt.dla_core"):
        load_experiment(path)
