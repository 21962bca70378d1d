"""TensorRT engine execution: ``execute_async_v3`` with tensor addresses on a dedicated stream.

Device buffers go through a small CUDA backend: cuda-python's ``cuda.bindings.runtime``
(the bindings NVIDIA's own samples use) or, where only it is installed, pycuda (on the
primary context, so it shares TensorRT's). Both modules and ``tensorrt`` itself are
arguments or imported on activation, never at import. The runner does not time itself;
it records CUDA events around ``execute_async_v3`` so a scenario can read the device time
of the last call (``last_device_ms``), trtexec's "GPU Compute Time".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness import deps
from harness.errors import DeviceUnavailable, InputError, MeasurementError, MissingDependency
from harness.runtimes.base import Runner, RunnerCapabilities, missing_modules_reason


class CudaPythonBackend:
    """cuda-python runtime API: every call returns ``(error, *values)``."""

    def __init__(self, cudart: Any) -> None:
        self.rt = cudart

    def _ok(self, result: Any) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self.rt.cudaError_t.cudaSuccess:
            raise MeasurementError(f"CUDA runtime call failed: {err}")
        return values[0] if len(values) == 1 else tuple(values) or None

    def device_count(self) -> int:
        result = self.rt.cudaGetDeviceCount()
        return int(result[1]) if result[0] == self.rt.cudaError_t.cudaSuccess else 0

    def open(self) -> str:
        """Make device 0 current; its name."""
        self._ok(self.rt.cudaSetDevice(0))
        props = self._ok(self.rt.cudaGetDeviceProperties(0))
        name = props.name
        return (name.split(b"\0")[0].decode() if isinstance(name, bytes) else str(name)).strip()

    def alloc(self, nbytes: int) -> Any:
        return self._ok(self.rt.cudaMalloc(nbytes))

    def pinned(self, nbytes: int) -> np.ndarray:
        import ctypes

        ptr = self._ok(self.rt.cudaMallocHost(nbytes))
        return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(int(ptr)))

    def free(self, ptr: Any) -> None:
        self._ok(self.rt.cudaFree(ptr))

    def free_pinned(self, array: np.ndarray) -> None:
        self._ok(self.rt.cudaFreeHost(array.ctypes.data))

    def stream(self) -> Any:
        return self._ok(self.rt.cudaStreamCreate())

    def close(self, stream: Any, events: tuple[Any, ...]) -> None:
        for event in events:
            self._ok(self.rt.cudaEventDestroy(event))
        self._ok(self.rt.cudaStreamDestroy(stream))

    def htod(self, dst: Any, src: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._ok(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream))

    def dtoh(self, dst: np.ndarray, src: Any, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._ok(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream))

    def synchronize(self, stream: Any) -> None:
        self._ok(self.rt.cudaStreamSynchronize(stream))

    def event(self) -> Any:
        return self._ok(self.rt.cudaEventCreate())

    def record(self, event: Any, stream: Any) -> None:
        self._ok(self.rt.cudaEventRecord(event, stream))

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._ok(self.rt.cudaEventElapsedTime(start, end)))


class PycudaBackend:
    """pycuda's driver API on the device's primary context (the one TensorRT and torch use)."""

    def __init__(self, driver: Any) -> None:
        self.drv = driver
        self._allocs: dict[int, Any] = {}
        self._context: Any = None

    def device_count(self) -> int:
        try:
            self.drv.init()
            return int(self.drv.Device.count())
        except Exception:  # pycuda raises its own LogicError/RuntimeError when there is no driver
            return 0

    def open(self) -> str:
        """Push device 0's primary context; its name."""
        self._context = self.drv.Device(0).retain_primary_context()
        self._context.push()
        return str(self.drv.Device(0).name())

    def alloc(self, nbytes: int) -> int:
        allocation = self.drv.mem_alloc(nbytes)
        self._allocs[int(allocation)] = allocation
        return int(allocation)

    def pinned(self, nbytes: int) -> np.ndarray:
        return self.drv.pagelocked_empty(nbytes, np.uint8)

    def free(self, ptr: int) -> None:
        self._allocs.pop(int(ptr)).free()

    def free_pinned(self, array: np.ndarray) -> None:
        base = getattr(array, "base", None)
        if base is not None and hasattr(base, "free"):
            base.free()

    def stream(self) -> Any:
        return self.drv.Stream()

    def close(self, stream: Any, events: tuple[Any, ...]) -> None:
        if self._context is not None:  # streams and events are freed by pycuda's garbage collection
            self._context.pop()
            self._context = None

    def htod(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self.drv.memcpy_htod_async(dst, src, stream)

    def dtoh(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self.drv.memcpy_dtoh_async(dst, src, stream)

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def event(self) -> Any:
        return self.drv.Event()

    def record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(end.time_since(start))


def default_cuda_backend() -> CudaPythonBackend | PycudaBackend:
    """cuda-python when installed, else pycuda, else :class:`MissingDependency`."""
    if deps.is_available("cuda.bindings"):
        from cuda.bindings import runtime

        return CudaPythonBackend(runtime)
    if deps.is_available("pycuda"):
        import pycuda.driver as driver

        return PycudaBackend(driver)
    exc = MissingDependency("cuda-python", purpose="TensorRT device buffers")
    exc.hint = "pip install 'cuda-python>=12.6,<13' on JetPack 6 (CUDA 12), cuda-python on CUDA 13; or pycuda"
    raise exc


def cuda_device_name(cuda: Any = None) -> str:
    """The name of CUDA device 0 (engines are cached per device), or :class:`DeviceUnavailable`."""
    cuda = cuda if cuda is not None else default_cuda_backend()
    if cuda.device_count() < 1:
        raise DeviceUnavailable("tensorrt: no CUDA device is visible (driver missing or no GPU)")
    return cuda.open()


def _handle(stream: Any) -> Any:
    return getattr(stream, "handle", stream)  # a pycuda Stream carries its handle; cuda-python's is one


def engine_device_memory_mb(engine: Any) -> tuple[float | None, str | None]:
    """Activation/scratch memory an execution context needs (MiB): ``device_memory_size_v2`` (10.1+, the
    largest over optimization profiles), else ``device_memory_size`` (10.0); trtexec's "device memory size"."""
    for name in ("device_memory_size_v2", "device_memory_size"):
        value = getattr(engine, name, None)
        if callable(value):
            value = value()
        if isinstance(value, int | float) and value >= 0:
            return value / 2**20, None
    return None, "this TensorRT engine exposes neither device_memory_size_v2 nor device_memory_size"


class TensorRTRunner(Runner):
    name = "tensorrt"
    artifact_format = "tensorrt-engine"
    description = "TensorRT engine, execute_async_v3 on a dedicated CUDA stream (cuda-python or pycuda buffers)"
    device_kind = "cuda"
    capabilities = RunnerCapabilities(activation_memory=True)

    def __init__(self, artifact: Path, *, threads: int | None = None, trt: Any = None, cuda: Any = None) -> None:
        super().__init__(artifact, threads=threads)
        self._trt, self._cuda = trt, cuda
        self.last_device_ms: float | None = None  # CUDA-event time of the last execute_async_v3
        self._buffers: list[Any] = []
        self.activation_mb: float | None = None  # the engine's device_memory_size once active
        self.activation_unavailable_reason: str | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        missing = missing_modules_reason("tensorrt")
        if missing:
            return missing
        if not (deps.is_available("cuda.bindings") or deps.is_available("pycuda")):
            return "neither cuda-python nor pycuda is installed (TensorRT device buffers)"
        try:
            if default_cuda_backend().device_count() < 1:
                return "no CUDA device is visible (driver missing or no GPU)"
        except Exception as exc:  # noqa: BLE001 - a broken CUDA install is a reason, not a crash
            return f"the CUDA runtime cannot be queried: {exc}"
        return None

    def activation_memory(self) -> tuple[float | None, str | None]:
        return self.activation_mb, self.activation_unavailable_reason

    def activate_impl(self) -> None:
        from harness.export.tensorrt import load_tensorrt

        trt = self._trt if self._trt is not None else load_tensorrt()
        cuda = self._cuda if self._cuda is not None else default_cuda_backend()
        self.device_name = cuda_device_name(cuda)
        self._trt, self._cuda = trt, cuda
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._engine = trt.Runtime(self._logger).deserialize_cuda_engine(self.artifact.read_bytes())
        if self._engine is None:
            raise InputError(f"tensorrt: cannot deserialize {self.artifact} (built for another GPU or TensorRT "
                             f"version than {trt.__version__} on {self.device_name}?)")
        self.activation_mb, self.activation_unavailable_reason = engine_device_memory_mb(self._engine)
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise InputError(f"tensorrt: expected one input and one output tensor, found {inputs} -> {outputs}")
        self._in, self._out = inputs[0], outputs[0]
        self._in_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._in)))
        self._out_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._out)))
        self._profiles = [tuple(tuple(int(d) for d in dims) for dims in self._engine.get_tensor_profile_shape(self._in, p))
                          for p in range(self._engine.num_optimization_profiles)]  # (min, opt, max) of each
        self._stream = cuda.stream()
        self._start, self._end = cuda.event(), cuda.event()
        self._profile: int | None = None
        largest = max((hi for _, _, hi in self._profiles), key=lambda s: int(np.prod(s)), default=None)
        self._capacity = (0, 0)
        if largest is not None:
            self._reserve(tuple(largest), self._select(tuple(largest)))

    def evaluation_batch(self, preferred: int) -> tuple[int, bool]:
        if self._profiles and all(lo[0] == hi[0] for lo, _, hi in self._profiles):
            return max(hi[0] for _, _, hi in self._profiles), True
        return preferred, False

    def _select(self, shape: tuple[int, ...]) -> int:
        if not self._profiles:  # a static engine
            return 0
        for index, (lo, _, hi) in enumerate(self._profiles):
            if all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
                return index
        ranges = ", ".join(f"{list(lo)}..{list(hi)}" for lo, _, hi in self._profiles)
        raise InputError(f"tensorrt: input shape {list(shape)} is outside every optimization profile ({ranges})")

    def _reserve(self, shape: tuple[int, ...], profile: int) -> tuple[int, ...]:
        """Set the profile and input shape; grow the device buffers when this shape needs more."""
        if self._profiles and profile != self._profile:
            self._context.set_optimization_profile_async(profile, _handle(self._stream))
            self._profile = profile
        self._context.set_input_shape(self._in, shape)
        out_shape = tuple(int(d) for d in self._context.get_tensor_shape(self._out))
        need = (int(np.prod(shape)) * self._in_dtype.itemsize, int(np.prod(out_shape)) * self._out_dtype.itemsize)
        if need[0] > self._capacity[0] or need[1] > self._capacity[1]:
            self._free_buffers()
            self._d_in, self._d_out = self._cuda.alloc(need[0]), self._cuda.alloc(need[1])
            self._h_in, self._h_out = self._cuda.pinned(need[0]), self._cuda.pinned(need[1])
            self._buffers = [("device", self._d_in), ("device", self._d_out), ("pinned", self._h_in),
                             ("pinned", self._h_out)]
            self._capacity = need
        return out_shape

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        shape = tuple(x.shape)
        out_shape = self._reserve(shape, self._select(shape))
        x = np.ascontiguousarray(x, dtype=self._in_dtype)
        host_in = self._h_in[: x.nbytes]
        host_in[:] = x.reshape(-1).view(np.uint8)
        host_out = self._h_out[: int(np.prod(out_shape)) * self._out_dtype.itemsize]
        stream = self._stream
        self._cuda.htod(self._d_in, host_in, stream)
        self._context.set_tensor_address(self._in, int(self._d_in))
        self._context.set_tensor_address(self._out, int(self._d_out))
        self._cuda.record(self._start, stream)
        if not self._context.execute_async_v3(_handle(stream)):
            raise MeasurementError("tensorrt: execute_async_v3 returned False")
        self._cuda.record(self._end, stream)
        self._cuda.dtoh(host_out, self._d_out, stream)
        self._cuda.synchronize(stream)
        self.last_device_ms = self._cuda.elapsed_ms(self._start, self._end)
        return host_out.view(self._out_dtype).reshape(out_shape).copy()

    def _free_buffers(self) -> None:
        for kind, buffer in self._buffers:
            self._cuda.free(buffer) if kind == "device" else self._cuda.free_pinned(buffer)
        self._buffers, self._capacity = [], (0, 0)

    def deactivate_impl(self) -> None:
        if getattr(self, "_context", None) is None:
            return
        self._free_buffers()
        self._cuda.close(self._stream, (self._start, self._end))
        self._context = self._engine = None
