"""torch eager execution of the saved ``torch.export`` program (the fp32 artifact)."""

from __future__ import annotations

import numpy as np

from harness.runtimes.base import Runner, missing_modules_reason


class TorchEagerRunner(Runner):
    name = "torch"
    artifact_format = "torch.export"
    description = "torch eager (CPU) running the saved torch.export program, inference_mode"
    device_kind = "cpu"
    requires = (("torch", "build"),)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return missing_modules_reason("torch")

    def activate_impl(self) -> None:
        import torch

        from harness.export.pt2 import load_program

        if self.threads:
            torch.set_num_threads(self.threads)
        self._torch = torch
        self._module = load_program(self.artifact).module()

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self._module(self._torch.from_numpy(x)).numpy()

    def deactivate_impl(self) -> None:
        self._module = None
