"""int8 post-training static quantization with onnxruntime (QDQ, S8S8).

Measured on this project's 2-core AVX2 CI machine (no VNNI): with full 8-bit weights,
onnxruntime's x86 int8 kernels saturate their 16-bit intermediate sums and per-channel
int8 accuracy collapsed (0.92 -> 0.46 top-1 on the digits CNN). ``reduce_range``
(7-bit weights) avoids the saturation and restored 0.92. The pipeline therefore passes
``reduce_range=True`` unless the CPU has VNNI, and records the choice.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from harness.config import QuantSpec
from harness.errors import InputError
from harness.progress import ProgressReporter


def quantize_int8_static(
    onnx_in: Path,
    onnx_out: Path,
    calibration_x: np.ndarray,
    spec: QuantSpec,
    *,
    reduce_range: bool,
    input_name: str = "input",
    progress: ProgressReporter | None = None,
    label: str = "int8",
) -> dict:
    """Write a QDQ int8 model calibrated on ``calibration_x``; returns the settings used."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    n = min(spec.calibration_samples, len(calibration_x))
    if n < 10:
        raise InputError(f"calibration split has {len(calibration_x)} samples; int8 calibration needs at least 10")
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }

    class Reader(CalibrationDataReader):
        def __init__(self, task) -> None:
            self._batches = iter(calibration_x[i : i + 1] for i in range(n))
            self._task = task

        def get_next(self):
            batch = next(self._batches, None)
            if batch is not None:
                self._task.advance()
            return None if batch is None else {input_name: batch}

    progress = progress or ProgressReporter()
    with tempfile.TemporaryDirectory() as tmp, progress.task(f"calibrating {label}", total=n) as task:
        pre = Path(tmp) / "preprocessed.onnx"
        quant_pre_process(str(onnx_in), str(pre))
        quantize_static(
            str(pre),
            str(onnx_out),
            Reader(task),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=spec.per_channel,
            reduce_range=reduce_range,
            calibrate_method=methods[spec.calibration_method],
        )
    return {
        "quantizer": "onnxruntime.quantization.quantize_static",
        "format": "QDQ",
        "activation_type": "int8",
        "weight_type": "int8",
        "per_channel": spec.per_channel,
        "reduce_range": reduce_range,
        "calibration_method": spec.calibration_method,
        "calibration_samples": n,
    }
