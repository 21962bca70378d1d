"""Score stage: the artifact that ships, run through its runtime over the whole evaluation split."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.metrics import accuracy_stats, against_baseline
from harness.metrics.groups import top_k_accuracy
from harness.records import AccuracyStats
from harness.stages.context import RunContext, RunState

EVAL_BATCH = 256


def evaluate(runner_cls: Any, artifact: Path, x: np.ndarray, threads: int) -> np.ndarray:
    """Logits of ``artifact`` on ``x`` through the runtime; NaN or infinite outputs are an error."""
    with runner_cls(artifact, threads=threads) as runner:
        runner.set_input_shape(tuple(x.shape[1:]))
        batch, pad = runner.evaluation_batch(EVAL_BATCH)
        chunks = []
        for i in range(0, len(x), batch):
            chunk = x[i : i + batch]
            if pad and len(chunk) < batch:  # a static-profile engine: pad with zeros, keep the real rows
                filler = np.zeros((batch - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, filler])
            chunks.append(runner.infer(chunk)[: min(batch, len(x) - i)])
        logits = np.concatenate(chunks)
    if not np.all(np.isfinite(logits)):
        raise HarnessError(
            f"{np.count_nonzero(~np.isfinite(logits))} NaN / infinite outputs on the evaluation split "
            f"({len(x)} images): the point is not scored"
        )
    return logits


@dataclass(frozen=True)
class Score:
    """What the accuracy pass of one (variant, runtime) found."""

    accuracy: AccuracyStats  # with deltas against the dense model on the same runtime, once that is scored
    logits: np.ndarray  # [N, C] on the evaluation split
    calibration_logits: np.ndarray | None  # on the calibration split, for binary threshold calibration

    def evaluation_record(self, split: Any) -> dict[str, Any]:
        """The store's evaluation row: accuracy, the samples scored, their labels and logits."""
        return {"accuracy": self.accuracy, "sample_index": split.index, "labels": split.y, "logits": self.logits}


def score(ctx: RunContext, state: RunState, variant_name: str, runtime: str, artifact: Path, dataset: Any) -> Score:
    """Accuracy per class and per group (and top-5 with more than five classes) of ``artifact``."""
    from harness.analysis import evaluation_groups
    from harness.runtimes import RUNTIMES

    runner_cls = RUNTIMES.get(runtime)
    ev = dataset.evaluation
    logits = evaluate(runner_cls, artifact, ev.x, ctx.threads)
    groups, levels = evaluation_groups(dataset, ctx.spec.groups.intersections)
    accuracy = accuracy_stats(ev.y, logits.argmax(1), dataset.class_names, groups, levels,
                              min_group_support=ctx.spec.groups.min_support)
    if logits.shape[1] > 5:
        accuracy = replace(accuracy, top5=top_k_accuracy(logits, ev.y, 5))
    if variant_name == "dense":
        state.dense_accuracy[runtime] = accuracy
    if runtime in state.dense_accuracy:
        accuracy = against_baseline(accuracy, state.dense_accuracy[runtime])
    calibration = None
    if dataset.n_classes == 2 and len(dataset.calibration):  # threshold calibration (Iofinova et al.)
        calibration = evaluate(runner_cls, artifact, dataset.calibration.x, ctx.threads)
    return Score(accuracy, logits, calibration)
