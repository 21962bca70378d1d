"""FakeTensorRT and FakeCudaRuntime: the small API surface the harness uses, recording every call.

Written from the documented TensorRT 10.x / 11.x Python APIs (shared/research/deploy.md
2.1-2.5): 11.x has no EXPLICIT_BATCH, no precision builder flags, STRONGLY_TYPED renumbered.
Enum integers differ between the two on purpose, so code that persists integers fails here.
The fake engine "computes" logits = 2 * the first 10 input values of each sample, through
FakeCudaRuntime's device memory, so a runner's buffer handling is checked end to end.
"""

from __future__ import annotations

import ctypes
import enum
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

DATA = Path(__file__).parent / "data" / "tensorrt"
N_CLASSES = 10

_FLAGS_10 = ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
             "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
             "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8", "BF16", "STRICT_NANS"]
_REMOVED_IN_11 = {"FP16", "INT8", "FP8", "BF16", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
                  "REJECT_EMPTY_ALGORITHMS"}


class FakeTensorRT:
    """A stand-in for the ``tensorrt`` module; ``calls`` lists (name, args) in call order."""

    def __init__(self, version: str = "10.3.0", *, engine_info: str | None = None, build_log: list[str] = (),
                 parse_ok: bool = True, build_ok: bool = True, cuda: FakeCudaRuntime | None = None) -> None:
        self.__version__ = version
        self.calls: list[tuple] = []
        self.cuda = cuda
        major = int(version.split(".")[0])
        self.engine_info = engine_info or (DATA / f"engine_info_trt{10 if major < 11 else 11}.json").read_text()
        self.build_log, self.parse_ok, self.build_ok = list(build_log), parse_ok, build_ok
        flags = _FLAGS_10 if major < 11 else [f for f in reversed(_FLAGS_10) if f not in _REMOVED_IN_11]
        self.BuilderFlag = enum.IntEnum("BuilderFlag", flags, start=0)
        network = ["EXPLICIT_BATCH", "STRONGLY_TYPED"] if major < 11 else ["STRONGLY_TYPED"]
        self.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", network, start=0)
        self.MemoryPoolType = enum.IntEnum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"], start=0)
        self.ProfilingVerbosity = enum.IntEnum("ProfilingVerbosity", ["LAYER_NAMES_ONLY", "NONE", "DETAILED"], start=0)
        self.DeviceType = enum.IntEnum("DeviceType", ["GPU", "DLA"], start=0)
        self.LayerInformationFormat = enum.IntEnum("LayerInformationFormat", ["ONELINE", "JSON"], start=0)
        self.TensorIOMode = enum.IntEnum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"], start=0)
        self.DataType = enum.IntEnum("DataType", ["FLOAT", "HALF", "INT8", "INT32"], start=0)
        severity = enum.IntEnum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"], start=0)

        class ILogger:
            Severity = severity

            def __init__(self) -> None:
                pass

        class Logger(ILogger):
            INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = tuple(severity)

            def __init__(self, min_severity=severity.WARNING) -> None:
                self.min_severity = min_severity

        self.ILogger, self.Logger = ILogger, Logger
        fake = self

        def record(name, *args):
            fake.calls.append((name, *args))

        self.record = record
        self.Builder = lambda logger: _Builder(fake, logger)
        self.OnnxParser = lambda network, logger: _Parser(fake, network)
        self.Runtime = lambda logger: SimpleNamespace(deserialize_cuda_engine=lambda plan: _engine(fake, plan))

    def nptype(self, dtype):
        return {self.DataType.FLOAT: np.float32, self.DataType.HALF: np.float16, self.DataType.INT8: np.int8,
                self.DataType.INT32: np.int32}[dtype]

    def names(self, call: str) -> list[tuple]:
        return [c[1:] for c in self.calls if c[0] == call]


class _Builder:
    def __init__(self, trt: FakeTensorRT, logger) -> None:
        self.trt, self.logger = trt, logger
        trt.record("Builder")

    def create_network(self, flags: int):
        self.trt.record("create_network", flags)
        return SimpleNamespace(flags=flags)

    def create_builder_config(self):
        return _Config(self.trt)

    def create_optimization_profile(self):
        trt = self.trt
        return SimpleNamespace(set_shape=lambda name, lo, opt, hi: trt.record("set_shape", name, lo, opt, hi))

    def build_serialized_network(self, network, config):
        self.trt.record("build_serialized_network")
        for line in self.trt.build_log:
            self.logger.log(self.trt.ILogger.Severity.INFO, line)
        self.logger.log(self.trt.ILogger.Severity.VERBOSE, "verbose chatter the harness drops")
        if not self.trt.build_ok:
            self.logger.log(self.trt.ILogger.Severity.ERROR, "Could not find any implementation for node /conv1")
            return None
        return bytearray(b"FAKE-ENGINE" + json.dumps({"profiles": config.profiles}).encode())


class _Config:
    def __init__(self, trt: FakeTensorRT) -> None:
        object.__setattr__(self, "trt", trt)
        object.__setattr__(self, "profiles", [])
        object.__setattr__(self, "_cache", b"")

    def __setattr__(self, name, value):  # profiling_verbosity, DLA_core, default_device_type ...
        self.trt.record("config." + name, value)
        object.__setattr__(self, name, value)

    def set_memory_pool_limit(self, pool, size):
        self.trt.record("set_memory_pool_limit", pool.name, size)

    def set_flag(self, flag):
        self.trt.record("set_flag", flag.name)

    def add_optimization_profile(self, profile):
        shapes = [c for c in self.trt.calls if c[0] == "set_shape"][-1]
        self.profiles.append([list(shapes[2]), list(shapes[3]), list(shapes[4])])
        self.trt.record("add_optimization_profile")

    def create_timing_cache(self, data: bytes):
        self.trt.record("create_timing_cache", bytes(data))
        return SimpleNamespace(serialize=lambda: bytearray(bytes(data) + b"+timings"))

    def set_timing_cache(self, cache, ignore_mismatch):
        self.trt.record("set_timing_cache", ignore_mismatch)
        object.__setattr__(self, "_timing", cache)

    def get_timing_cache(self):
        return self._timing


class _Parser:
    def __init__(self, trt: FakeTensorRT, network) -> None:
        self.trt, self.num_errors = trt, 0

    def parse_from_file(self, path: str) -> bool:
        self.trt.record("parse_from_file", path)
        self.num_errors = 0 if self.trt.parse_ok else 1
        return self.trt.parse_ok

    def get_error(self, i: int) -> str:
        return "In node 3 (Conv): unsupported attribute"


def _engine(trt: FakeTensorRT, plan: bytes):
    plan = bytes(plan)
    if not plan.startswith(b"FAKE-ENGINE"):
        return None
    return _Engine(trt, json.loads(plan[len(b"FAKE-ENGINE"):])["profiles"])


#: the fake engine's activation memory (bytes); 11.x keeps only the _v2 property
FAKE_DEVICE_MEMORY_BYTES = 3 * 2**20


class _Engine:
    def __init__(self, trt: FakeTensorRT, profiles: list) -> None:
        self.trt, self.profiles = trt, profiles
        self.num_io_tensors, self.num_optimization_profiles = 2, len(profiles)
        self.device_memory_size_v2 = FAKE_DEVICE_MEMORY_BYTES
        if int(trt.__version__.split(".")[0]) < 11:
            self.device_memory_size = FAKE_DEVICE_MEMORY_BYTES

    def get_tensor_name(self, i: int) -> str:
        return ["input", "logits"][i]

    def get_tensor_mode(self, name: str):
        return self.trt.TensorIOMode.INPUT if name == "input" else self.trt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str):
        return self.trt.DataType.FLOAT

    def get_tensor_profile_shape(self, name: str, profile: int):
        return [tuple(s) for s in self.profiles[profile]]

    def create_execution_context(self):
        return _Context(self.trt)

    def create_engine_inspector(self):
        info = self.trt.engine_info
        return SimpleNamespace(get_engine_information=lambda fmt: info if fmt.name == "JSON" else "oneline")


class _Context:
    def __init__(self, trt: FakeTensorRT) -> None:
        self.trt, self.shape, self.addresses = trt, None, {}

    def set_optimization_profile_async(self, index: int, stream) -> bool:
        self.trt.record("set_optimization_profile_async", index)
        return True

    def set_input_shape(self, name: str, shape) -> bool:
        self.trt.record("set_input_shape", name, tuple(shape))
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name: str):
        return (self.shape[0], N_CLASSES)

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.addresses[name] = address
        self.trt.record("set_tensor_address", name)
        return True

    def execute_async_v3(self, stream) -> bool:
        self.trt.record("execute_async_v3", stream)
        memory = self.trt.cuda.memory
        n = int(np.prod(self.shape))
        x = np.frombuffer(bytes(memory[self.addresses["input"]][: n * 4]), np.float32).reshape(self.shape[0], -1)
        y = (2 * x[:, :N_CLASSES]).astype(np.float32)
        memory[self.addresses["logits"]][: y.nbytes] = y.tobytes()
        return True


class FakeCudaRuntime:
    """``cuda.bindings.runtime``'s shape: calls return (error, *values); device memory is a dict."""

    cudaError_t = SimpleNamespace(cudaSuccess=0, cudaErrorNoDevice=100)
    cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)

    def __init__(self, n_devices: int = 1) -> None:
        self.n_devices, self.memory, self.pinned, self.calls = n_devices, {}, {}, []
        self._next = 0x1000

    def cudaGetDeviceCount(self):
        return (0, self.n_devices) if self.n_devices else (100, 0)

    def cudaSetDevice(self, index):
        return (0,)

    def cudaGetDeviceProperties(self, index):
        return 0, SimpleNamespace(name=b"Fake GPU 80GB\x00\x00")

    def cudaMalloc(self, nbytes):
        self._next += 0x1000 + nbytes
        self.memory[self._next] = bytearray(nbytes)
        self.calls.append(("cudaMalloc", nbytes))
        return 0, self._next

    def cudaFree(self, ptr):
        self.memory.pop(ptr)
        return (0,)

    def cudaMallocHost(self, nbytes):
        buffer = ctypes.create_string_buffer(nbytes)
        self.pinned[ctypes.addressof(buffer)] = buffer
        return 0, ctypes.addressof(buffer)

    def cudaFreeHost(self, ptr):
        self.pinned.pop(ptr)
        return (0,)

    def cudaStreamCreate(self):
        return 0, "stream-1"

    def cudaStreamDestroy(self, stream):
        self.calls.append(("cudaStreamDestroy", stream))
        return (0,)

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        if kind == self.cudaMemcpyKind.cudaMemcpyHostToDevice:
            self.memory[dst][:nbytes] = ctypes.string_at(src, nbytes)
        else:
            ctypes.memmove(dst, bytes(self.memory[src][:nbytes]), nbytes)
        return (0,)

    def cudaStreamSynchronize(self, stream):
        return (0,)

    def cudaEventCreate(self):
        return 0, object()

    def cudaEventRecord(self, event, stream):
        return (0,)

    def cudaEventElapsedTime(self, start, end):
        return 0, 0.25

    def cudaEventDestroy(self, event):
        return (0,)


# ---------------------------------------------------------------------------- the fake itself


def test_fake_tensorrt_11_lacks_what_the_11x_api_removed():
    trt10, trt11 = FakeTensorRT("10.3.0"), FakeTensorRT("11.4.1")
    assert hasattr(trt10.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    assert not hasattr(trt11.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    assert hasattr(trt10.BuilderFlag, "FP16") and not hasattr(trt11.BuilderFlag, "FP16")
    assert hasattr(trt11.BuilderFlag, "SPARSE_WEIGHTS") and hasattr(trt11.BuilderFlag, "GPU_FALLBACK")


def test_fake_tensorrt_renumbers_enums_between_majors_so_persisted_integers_would_break():
    trt10, trt11 = FakeTensorRT("10.3.0"), FakeTensorRT("11.4.1")
    assert int(trt10.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 1
    assert int(trt11.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 0
    assert int(trt10.BuilderFlag.SPARSE_WEIGHTS) != int(trt11.BuilderFlag.SPARSE_WEIGHTS)


@pytest.mark.parametrize("major", [10, 11])
def test_fake_engine_inspector_serves_the_recorded_schema_of_its_major(major):
    trt = FakeTensorRT(f"{major}.0.0")
    engine = trt.Runtime(None).deserialize_cuda_engine(b'FAKE-ENGINE{"profiles": []}')
    info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    assert ("I/O Tensors" in info) == (major == 11) and ("Bindings" in info) == (major == 10)
