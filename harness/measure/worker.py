"""The performance pass for one (artifact, runtime): every scenario, latency + energy + memory + state.

Run in a fresh process by default (``python -m harness.measure.worker REQUEST RESULT``)
so that one variant's memory and caches do not colour the next; ``measure_inline``
runs the same code in the calling process for tests.

Order inside the process: hash the artifact (it must be the file that was scored), pick
the energy meter and measure idle power before anything is loaded, load the runtime,
then for each batch size read the device state, time the queries (the energy window
covers the measured queries only, not the warm-up), read the state again and check the
timed outputs against the accuracy pass's. Memory figures come last.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import atomic_write_text
from harness.errors import MeasurementError
from harness.export.inspect import file_sha256  # the hash ArtifactInfo records
from harness.measure.latency import StoppingRule, sample_latency, summarize
from harness.records import to_dict

#: idle-baseline window per measuring process when measure.idle_baseline_s is not set (seconds)
IDLE_BASELINE_S = {"standard": 5.0, "quick": 1.0}
#: rows of each timed batch whose outputs are compared with the accuracy pass's
OUTPUT_CHECK_ROWS = 8


@dataclass(frozen=True)
class MeasureRequest:
    runtime: str
    artifact: str
    inputs_npy: str  # evaluation images; a batch of b is the first b (tiled if needed)
    batch_sizes: list[int]
    rule: dict
    threads: int | None
    profile: str
    scenarios: list[str] | None = None  # one per batch size
    expected_sha256: str | None = None  # of the artifact the accuracy pass scored
    reference_logits_npy: str | None = None  # the accuracy pass's outputs for inputs_npy's rows
    bootstrap_resamples: int = 1000
    bootstrap_seed: int = 0
    energy_meter: str = "auto"
    external_meter_command: str | None = None
    idle_baseline_s: float = 0.0
    sysfs_root: str = "/sys"
    expected_power_mode: str | None = None  # the target profile's default nvpmodel mode, if a target was named
    lock_clocks: bool = False
    lock_gpu_clock_mhz: int | None = None
    unified_memory: bool = False  # the target's CPU and GPU share memory (Jetson): record the system delta

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> MeasureRequest:
        return cls(**json.loads(text))


def _batch(x: np.ndarray, b: int) -> np.ndarray:
    reps = -(-b // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:b]) if reps > 1 else np.ascontiguousarray(x[:b])


def check_artifact(path: Path, expected_sha256: str | None) -> str:
    """sha256 of the file about to be timed; a mismatch with the scored file is an error."""
    try:
        digest = file_sha256(path)
    except OSError as exc:
        raise MeasurementError(f"cannot read the artifact to time: {path}: {exc.strerror}") from exc
    if expected_sha256 is not None and digest != expected_sha256:
        raise MeasurementError(
            f"the artifact timed is not the one scored: {path} has sha256 {digest[:12]}..., the accuracy pass "
            f"scored {expected_sha256[:12]}... (the file changed between scoring and timing)"
        )
    return digest


def proc_status_mb(key: str, status: Path = Path("/proc/self/status")) -> tuple[float | None, str | None]:
    """A ``kB`` line of /proc/self/status (VmRSS, VmHWM ...) in MiB, or ``(None, reason)``."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024.0, None  # kB
    except OSError as exc:
        return None, f"cannot read {status}: {exc.strerror}"
    return None, f"no {key} line in {status} (not Linux)"


def peak_rss_mb(status: Path = Path("/proc/self/status")) -> tuple[float | None, str | None]:
    """Peak resident memory of this process in MiB, from the kernel's high-water mark (VmHWM).

    Not ``getrusage().ru_maxrss``: Linux keeps that across fork + exec, so a fresh measuring
    process would report its parent's peak (torch, training data) instead of its own.
    """
    return proc_status_mb("VmHWM", status)


def weights_mb(path: Path, fmt: str) -> tuple[float | None, str | None]:
    """MiB of the stored weights, read by the format's weights reader (any ``.onnx`` file as ONNX)."""
    from harness.export.formats import FORMATS, is_onnx

    reader = FORMATS["onnx"] if is_onnx(fmt, path) else FORMATS.get(fmt)
    if reader is None or reader.weights_reader is None:
        return None, f"weights are not read from {fmt} artifacts"
    try:
        return reader.weights_mb(path), None
    except Exception as exc:  # a reading failure leaves the figure out, never the measurement
        return None, f"weights of {path.name} could not be read: {exc}"


def output_check(outputs: np.ndarray, reference: np.ndarray | None, rows: int = OUTPUT_CHECK_ROWS) -> dict[str, Any]:
    """Timed outputs against the accuracy pass's for the first ``rows`` inputs of the batch."""
    if reference is None:
        return {"output_check_unavailable_reason": "no reference outputs from the accuracy pass were given"}
    n = min(rows, len(outputs), len(reference))
    got, want = np.asarray(outputs[:n], dtype=np.float64), np.asarray(reference[:n], dtype=np.float64)
    if got.shape != want.shape:
        return {"output_check_unavailable_reason": f"timed output shape {got.shape} differs from the scored {want.shape}"}
    return {
        "output_check_n": n,
        "output_check_argmax_agreement": float(np.mean(got.argmax(1) == want.argmax(1))),
        "output_check_max_abs_diff": float(np.max(np.abs(got - want))) if n else 0.0,
    }


def _meter(request: MeasureRequest, on_gpu: bool):
    from harness.meters import choose_meter, detect_meters

    meters = detect_meters(
        sysfs_root=Path(request.sysfs_root),
        probe_nvml=on_gpu or request.energy_meter == "nvml",
        external_command=request.external_meter_command,
    )
    return choose_meter(meters, request.energy_meter, on_gpu=on_gpu)


def idle_baseline(meter, seconds: float, sleep=time.sleep):
    """``(window, None)`` of ``seconds`` of idling on ``meter``, or ``(None, reason)``."""
    if not meter.available:
        return None, meter.reason
    if seconds <= 0:
        return None, "the idle baseline was switched off (measure.idle_baseline_s = 0)"
    meter.begin_window("idle-baseline")
    sleep(seconds)
    window = meter.end_window("idle-baseline")
    if window.total_energy_j is None:
        return None, f"the {meter.name} meter recorded no energy while idle"
    return window, None


def _nvml_for_state(on_gpu: bool):
    if not on_gpu:
        return None
    try:
        from harness.meters.nvml import _load_pynvml

        return _load_pynvml()
    except ImportError:
        return None


def jetson_reader(sysfs: Path, run=None):
    """Reads nvpmodel / jetson_clocks state; after a first reading that finds no Jetson it stops asking."""
    from harness.measure.jetson_state import read_jetson_state, run_command

    first = read_jetson_state(run or run_command, sysfs)
    if first.power_mode is None and first.power_mode_id is None:
        return lambda: first
    return lambda: read_jetson_state(run or run_command, sysfs)


def _lock_kind(on_gpu: bool, jetson_state) -> str:
    if jetson_state.power_mode is not None or jetson_state.power_mode_id is not None:
        return "jetson"
    return "gpu" if on_gpu else "cpu"


def _record_lock(batches: list[dict], lock) -> None:
    """The clock lock's outcome (known only once it is released) into every batch's device state."""
    if not lock.requested:
        return
    for b in batches:
        state = b["device_state"]
        state["clock_lock"] = lock.record()
        state["warnings"] = state["warnings"] + [f"clock lock: {w}" for w in lock.warnings]


def run_request(request: MeasureRequest, isolation: str) -> dict:
    from harness.measure.clock_lock import clock_lock
    from harness.measure.device_state import device_state, snapshot
    from harness.measure.gpu_timing import summarize_gpu_timing
    from harness.measure.memory import SPARSE_FORMAT, MemoryProbe, sparse_weights_mb
    from harness.meters.base import energy_stats
    from harness.runtimes import RUNTIMES

    runner_cls = RUNTIMES.get(request.runtime)
    on_gpu = runner_cls.device_kind == "cuda"
    capabilities = runner_cls.capabilities
    artifact = Path(request.artifact)
    sha = check_artifact(artifact, request.expected_sha256)
    x = np.load(request.inputs_npy)
    reference = np.load(request.reference_logits_npy) if request.reference_logits_npy else None
    rule = StoppingRule(**request.rule)
    scenarios: list[str | None] = [*request.scenarios] if request.scenarios else [None] * len(request.batch_sizes)
    sysfs = Path(request.sysfs_root)
    nvml = _nvml_for_state(on_gpu)
    jetson = jetson_reader(sysfs)
    batches = []
    with ExitStack() as stack:  # on exit: the meter closes, then the clocks are restored (also on errors)
        lock = stack.enter_context(clock_lock(
            request.lock_clocks, kind=_lock_kind(on_gpu, jetson()), state_dir=Path(request.inputs_npy).parent,
            nvml=nvml, gpu_clock_mhz=request.lock_gpu_clock_mhz,
        ))
        meter = stack.enter_context(closing(_meter(request, on_gpu)))
        idle, idle_reason = idle_baseline(meter, request.idle_baseline_s)
        rss_before, rss_before_reason = proc_status_mb("VmRSS")
        probe = MemoryProbe(nvml=nvml, unified=request.unified_memory)
        probe.before_load()
        with runner_cls(artifact, threads=request.threads) as runner:
            rss_after, rss_after_reason = proc_status_mb("VmRSS")
            probe.sample()
            for b, scenario in zip(request.batch_sizes, scenarios, strict=True):
                xb = _batch(x, b)
                window = f"{request.runtime}/bs{b}"
                timings: list[dict[str, float]] = []

                def query(xb=xb, timings=timings, gpu=capabilities.gpu_timing):
                    runner.infer(xb)
                    if gpu:
                        timings.append(runner.last_timing_ms)

                energy: dict[str, Any] = {}
                state_before = snapshot(sysfs, nvml, jetson_reader=jetson)
                def begin(w: str = window) -> None:
                    meter.begin_window(w)

                def end(w: str = window, e: dict[str, Any] = energy) -> None:
                    e.update(window=meter.end_window(w))

                trace = sample_latency(query, rule, on_start=begin, on_end=end)
                state_after = snapshot(sysfs, nvml, jetson_reader=jetson)
                probe.sample()
                stats = summarize(
                    trace, batch_size=b, threads=request.threads, profile=request.profile, isolation=isolation,
                    rule=rule, scenario=scenario, bootstrap_resamples=request.bootstrap_resamples,
                    bootstrap_seed=request.bootstrap_seed,
                )
                ref_b = _batch(reference, b) if reference is not None else None
                stats = replace(stats, timed_artifact_sha256=sha, **output_check(runner.infer(xb), ref_b))
                n_inferences = b * len(trace.samples_s)
                gpu_timing = None
                if capabilities.gpu_timing:
                    pipelined = runner.pipelined_throughput(xb, rule) if capabilities.pipelined_throughput else None
                    gpu_timing = summarize_gpu_timing(
                        timings, batch_size=b, pipelined=pipelined, cuda_graphs=capabilities.cuda_graphs
                    )
                batches.append(
                    {
                        "latency": to_dict(stats),
                        "warmup_ms": [s * 1e3 for s in trace.warmup_s],
                        "samples_ms": [s * 1e3 for s in trace.samples_s],
                        "energy": to_dict(energy_stats(
                            energy["window"], n_inferences, meter, idle=idle, idle_unavailable_reason=idle_reason,
                            trace=meter.power_trace(energy["window"]),
                        )),
                        "device_state": to_dict(replace(
                            device_state(state_before, state_after, request.expected_power_mode),
                            clocks_locked=lock.locked if lock.requested else None,
                        )),
                        "gpu_timing": to_dict(gpu_timing) if gpu_timing is not None else None,
                    }
                )
            activation_mb, activation_reason = (
                runner.activation_memory() if capabilities.activation_memory else (None, None))
            peak_gpu = runner.peak_gpu_mb() if capabilities.peak_gpu_memory else None
    _record_lock(batches, lock)
    memory = _memory(isolation, rss_before, rss_before_reason, rss_after, rss_after_reason, activation_mb, peak_gpu)
    if activation_mb is None and activation_reason:
        memory["unavailable_reasons"]["activation_mb"] = activation_reason
    memory["weights_mb"], why = weights_mb(artifact, runner_cls.artifact_format)
    if why:
        memory["unavailable_reasons"]["weights_mb"] = why
    memory["sparse_weights_mb"], why = sparse_weights_mb(artifact, runner_cls.artifact_format)
    memory["sparse_weights_format"] = SPARSE_FORMAT if memory["sparse_weights_mb"] is not None else None
    if why:
        memory["unavailable_reasons"]["sparse_weights_mb"] = why
    probed, why_not = probe.result()
    memory.update(probed)
    memory["unavailable_reasons"].update(why_not)
    return {
        "batches": batches,
        "peak_rss_mb": memory["peak_rss_mb"],
        "peak_rss_unavailable_reason": memory["unavailable_reasons"].get("peak_rss_mb"),
        "memory": memory,
    }


def _memory(isolation, rss_before, rss_before_reason, rss_after, rss_after_reason, activation_mb, peak_gpu) -> dict:
    reasons: dict[str, str] = {}
    if isolation == "process":
        peak, peak_reason = peak_rss_mb()
    else:
        peak, peak_reason = None, "inline measurement: the harness process also holds training data and other variants"
        rss_before = rss_after = None
        rss_before_reason = rss_after_reason = peak_reason
    for name, value, why in (("peak_rss_mb", peak, peak_reason), ("rss_before_load_mb", rss_before, rss_before_reason),
                             ("rss_after_load_mb", rss_after, rss_after_reason)):
        if value is None:
            reasons[name] = why or "not read"
    load = rss_after - rss_before if rss_after is not None and rss_before is not None else None
    growth = peak - rss_after if peak is not None and rss_after is not None else None
    if load is None:
        reasons["runtime_load_mb"] = "needs both RSS readings around loading"
    if growth is None:
        reasons["inference_rss_growth_mb"] = "needs the peak and the after-load RSS"
    if activation_mb is None:
        reasons["activation_mb"] = (
            "this runtime reports no activation/workspace figure of its own (CPU runtimes allocate activations "
            "from their arena: see inference_rss_growth_mb)"
        )
    if peak_gpu is None:
        reasons["peak_gpu_mb"] = "not a GPU runtime, or it reports no allocator peak"
    return {
        "peak_rss_mb": peak, "peak_rss_unavailable_reason": reasons.get("peak_rss_mb"),
        "rss_before_load_mb": rss_before, "rss_after_load_mb": rss_after,
        "runtime_load_mb": load, "inference_rss_growth_mb": growth, "activation_mb": activation_mb,
        "peak_gpu_mb": peak_gpu, "unavailable_reasons": reasons,
    }


def main(argv: list[str]) -> int:
    request_path, result_path = argv
    request = MeasureRequest.from_json(Path(request_path).read_text())
    result = run_request(request, "process")
    atomic_write_text(result_path, json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
