"""A fleet of devices sharing one store: `harness submit` queues jobs, `harness worker` runs them.

The submitting machine builds every artifact once (training, pruning, export, quantization)
and puts the files and the evaluation split in the store; a worker on each device claims
(variant, runtime) jobs for its target, measures them locally and writes the results. The
worker that finishes a run's last job chooses its operating point and writes its card.
"""

from harness.fleet.worker import WorkSummary, submit, work

__all__ = ["WorkSummary", "submit", "work"]
