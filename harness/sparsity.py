"""The 2:4 semi-structured sparsity check: the pattern NVIDIA's sparse tensor cores accept.

In every group of 4 consecutive weights along the **reduction** axis at least 2 are zero.
:func:`check_2_4` is pure numpy and works on any weight array, so it validates a pruned
module (:mod:`harness.compress.semistructured`) and what an exported ONNX file really holds
(:func:`harness.export.inspect.validate_2_4`) alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GROUP = 4
KEEP = 2


@dataclass(frozen=True)
class TwoFourCheck:
    """The 2:4 status of one weight tensor along its reduction axis."""

    eligible: bool  # reduction size is a multiple of 4
    n_groups: int
    n_violations: int  # groups with fewer than 2 zeros

    @property
    def compliant(self) -> bool:
        return self.eligible and self.n_violations == 0


def check_2_4(weight: np.ndarray, axis: int, zero_point: np.ndarray | float = 0) -> TwoFourCheck:
    """Check every group of 4 consecutive elements along ``axis`` for at least 2 zeros.

    ``zero_point``: the value that means zero (a quantized weight's zero point, broadcastable
    to ``weight``). A tensor whose ``axis`` is not a multiple of 4 is ``eligible=False``.
    """
    zero = np.asarray(weight) == zero_point
    size = zero.shape[axis] if zero.ndim else 0
    if size == 0 or size % GROUP:
        return TwoFourCheck(False, 0, 0)
    groups = np.moveaxis(zero, axis, -1).reshape(-1, GROUP)
    return TwoFourCheck(True, int(groups.shape[0]), int(np.count_nonzero(groups.sum(axis=1) < GROUP - KEEP)))
