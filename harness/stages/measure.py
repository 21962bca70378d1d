"""Measure stage: the scored artifact timed at every batch size in a fresh process (latency, memory,
energy, device state), read back as a typed :class:`MeasureResult`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.records import DeviceState, EnergyStats, GpuTiming, LatencyStats, MemoryStats, to_dict
from harness.stages.context import RunContext

if TYPE_CHECKING:
    from harness.config import MeasureSpec
    from harness.measure.latency import StoppingRule
    from harness.measure.worker import MeasureRequest


@dataclass(frozen=True)
class BatchMeasurement:
    """One batch size's timed loop."""

    latency: LatencyStats
    energy: EnergyStats
    device_state: DeviceState
    gpu_timing: GpuTiming | None
    warmup_ms: list[float]  # every warm-up query
    samples_ms: list[float]  # every timed query


@dataclass(frozen=True)
class MeasureResult:
    """The measuring process's answer: one :class:`BatchMeasurement` per batch size and the memory stack."""

    batches: list[BatchMeasurement]
    memory: MemoryStats

    @classmethod
    def from_worker(cls, answer: dict[str, Any], artifact_mb: float) -> MeasureResult:
        """From the JSON the measuring process writes (harness.measure.worker.run_request)."""
        return cls(
            batches=[
                BatchMeasurement(
                    latency=LatencyStats(**b["latency"]),
                    energy=EnergyStats(**b["energy"]),
                    device_state=DeviceState(**b["device_state"]),
                    gpu_timing=GpuTiming(**b["gpu_timing"]) if b.get("gpu_timing") else None,
                    warmup_ms=b["warmup_ms"],
                    samples_ms=b["samples_ms"],
                )
                for b in answer["batches"]
            ],
            memory=MemoryStats(artifact_mb=artifact_mb, **answer["memory"]),
        )


def target_facts(target: str | None) -> dict[str, Any]:
    """From the named target profile: its default power mode (checked against nvpmodel) and unified memory."""
    from harness.targets import load_target

    if not target:
        return {}
    profile = load_target(target)
    return {"expected_power_mode": profile.power.default_mode if profile.power else None,
            "unified_memory": profile.memory.unified}


def measure_request(ms: MeasureSpec, rule: StoppingRule, threads: int | None, target: str | None, runtime: str,
                    artifact: Path, sha256: str | None, inputs_npy: Path,
                    reference_npy: Path | None) -> MeasureRequest:
    """The measuring process's request for ``artifact`` on ``runtime`` at every batch size of ``ms``: the one
    place a sweep and ``harness bench`` turn measurement settings into a request. ``reference_npy`` None: the
    timed outputs are not checked (recorded as unavailable, with the reason)."""
    from harness.measure.worker import IDLE_BASELINE_S, MeasureRequest

    return MeasureRequest(
        runtime=runtime,
        artifact=str(artifact),
        inputs_npy=str(inputs_npy),
        batch_sizes=ms.batch_sizes,
        rule=to_dict(rule),
        threads=threads,
        profile=ms.profile,
        scenarios=[ms.scenario_for(b) for b in ms.batch_sizes],
        expected_sha256=sha256,
        reference_logits_npy=str(reference_npy) if reference_npy is not None else None,
        bootstrap_resamples=ms.bootstrap_resamples,
        bootstrap_seed=ms.bootstrap_seed,
        energy_meter=ms.energy_meter,
        external_meter_command=ms.external_meter_command,
        idle_baseline_s=ms.idle_baseline_s if ms.idle_baseline_s is not None else IDLE_BASELINE_S[ms.profile],
        **target_facts(target),
        lock_clocks=ms.lock_clocks,
        lock_gpu_clock_mhz=ms.lock_gpu_clock_mhz,
    )


def run_measurement(request: MeasureRequest, isolation: str, artifact_mb: float) -> MeasureResult:
    """``request`` run in a fresh measuring process (or inline), read back typed."""
    from harness.measure.launch import measure

    return MeasureResult.from_worker(measure(request, isolation), artifact_mb)


def measure_artifact(ctx: RunContext, runtime: str, artifact: Path, sha256: str | None, artifact_mb: float,
                     inputs_npy: Path, reference_npy: Path) -> MeasureResult:
    """Time ``artifact`` (whose sha256 the accuracy pass scored) on ``inputs_npy``; its outputs are checked
    against ``reference_npy``, the accuracy pass's logits of the same rows."""
    ms = ctx.spec.measure
    request = measure_request(ms, ctx.rule, ctx.threads, ctx.spec.target, runtime, artifact, sha256, inputs_npy,
                              reference_npy)
    return run_measurement(request, ms.isolation, artifact_mb)
