"""Measure stage: the scored artifact timed at every batch size in a fresh process (latency, memory,
energy, device state), read back as a typed :class:`MeasureResult`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.records import DeviceState, EnergyStats, GpuTiming, LatencyStats, MemoryStats, to_dict
from harness.stages.context import RunContext


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


def _target_facts(ctx: RunContext) -> dict[str, Any]:
    """From the named target profile: its default power mode (checked against nvpmodel) and unified memory."""
    from harness.targets import load_target

    if not ctx.spec.target:
        return {}
    profile = load_target(ctx.spec.target)
    return {"expected_power_mode": profile.power.default_mode if profile.power else None,
            "unified_memory": profile.memory.unified}


def measure_artifact(ctx: RunContext, runtime: str, artifact: Path, sha256: str | None, artifact_mb: float,
                     inputs_npy: Path, reference_npy: Path) -> MeasureResult:
    """Time ``artifact`` (whose sha256 the accuracy pass scored) on ``inputs_npy``; its outputs are checked
    against ``reference_npy``, the accuracy pass's logits of the same rows."""
    from harness.measure.launch import measure
    from harness.measure.worker import IDLE_BASELINE_S, MeasureRequest

    ms = ctx.spec.measure
    request = MeasureRequest(
        runtime=runtime,
        artifact=str(artifact),
        inputs_npy=str(inputs_npy),
        batch_sizes=ms.batch_sizes,
        rule=to_dict(ctx.rule),
        threads=ctx.threads,
        profile=ms.profile,
        scenarios=[ms.scenario_for(b) for b in ms.batch_sizes],
        expected_sha256=sha256,
        reference_logits_npy=str(reference_npy),
        bootstrap_resamples=ms.bootstrap_resamples,
        bootstrap_seed=ms.bootstrap_seed,
        energy_meter=ms.energy_meter,
        external_meter_command=ms.external_meter_command,
        idle_baseline_s=ms.idle_baseline_s if ms.idle_baseline_s is not None else IDLE_BASELINE_S[ms.profile],
        **_target_facts(ctx),
        lock_clocks=ms.lock_clocks,
        lock_gpu_clock_mhz=ms.lock_gpu_clock_mhz,
    )
    return MeasureResult.from_worker(measure(request, ms.isolation), artifact_mb)
