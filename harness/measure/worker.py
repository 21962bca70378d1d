"""The performance pass for one (artifact, runtime): every batch size, latency + energy + peak RSS.

Run in a fresh process by default (``python -m harness.measure.worker REQUEST RESULT``)
so that one variant's memory and caches do not colour the next; ``measure_inline``
runs the same code in the calling process for tests.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.measure.latency import StoppingRule, sample_latency, summarize
from harness.records import to_dict


@dataclass(frozen=True)
class MeasureRequest:
    runtime: str
    artifact: str
    inputs_npy: str  # evaluation images; a batch of b is the first b (tiled if needed)
    batch_sizes: list[int]
    rule: dict
    threads: int | None
    profile: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> MeasureRequest:
        return cls(**json.loads(text))


def _batch(x: np.ndarray, b: int) -> np.ndarray:
    reps = -(-b // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:b]) if reps > 1 else np.ascontiguousarray(x[:b])


def peak_rss_mb(status: Path = Path("/proc/self/status")) -> tuple[float | None, str | None]:
    """Peak resident memory of this process in MiB, from the kernel's high-water mark (VmHWM).

    Not ``getrusage().ru_maxrss``: Linux keeps that across fork + exec, so a fresh measuring
    process would report its parent's peak (torch, training data) instead of its own.
    """
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0, None  # kB
    except OSError as exc:
        return None, f"cannot read {status}: {exc.strerror}"
    return None, f"no VmHWM line in {status} (not Linux)"


def run_request(request: MeasureRequest, isolation: str) -> dict:
    from harness.meters import detect_cpu_meter
    from harness.meters.base import energy_stats
    from harness.runtimes import RUNTIMES

    runner_cls = RUNTIMES.get(request.runtime)
    x = np.load(request.inputs_npy)
    rule = StoppingRule(**request.rule)
    meter = detect_cpu_meter()
    batches = []
    with runner_cls(Path(request.artifact), threads=request.threads) as runner:
        for b in request.batch_sizes:
            xb = _batch(x, b)
            window = f"{request.runtime}/bs{b}"
            meter.begin_window(window)
            trace = sample_latency(lambda: runner.infer(xb), rule)
            energy_window = meter.end_window(window)
            stats = summarize(trace, batch_size=b, threads=request.threads, profile=request.profile, isolation=isolation)
            n_inferences = b * (len(trace.samples_s))
            batches.append(
                {
                    "latency": to_dict(stats),
                    "warmup_ms": [s * 1e3 for s in trace.warmup_s],
                    "samples_ms": [s * 1e3 for s in trace.samples_s],
                    "energy": to_dict(energy_stats(energy_window, n_inferences, meter)),
                }
            )
    if isolation == "process":
        rss_mb, rss_reason = peak_rss_mb()
    else:
        rss_mb, rss_reason = None, "inline measurement: the harness process also holds training data and other variants"
    return {"batches": batches, "peak_rss_mb": rss_mb, "peak_rss_unavailable_reason": rss_reason}


def main(argv: list[str]) -> int:
    request_path, result_path = argv
    request = MeasureRequest.from_json(Path(request_path).read_text())
    result = run_request(request, "process")
    tmp = Path(result_path).with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
