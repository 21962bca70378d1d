"""Compression recipes: pruning (unstructured, 2:4, channel), fine-tuning / distillation, quantization."""

from collections.abc import Callable
from typing import Any

from harness.registry import Registry

PRUNERS: Registry[Callable[..., Any]] = Registry("pruner")
PRUNERS.register("magnitude", "harness.compress.prune:magnitude_prune")
PRUNERS.register("channel", "harness.compress.prune:channel_prune")
PRUNERS.register("2:4", "harness.compress.semistructured:semistructured_prune")

#: keyed by QuantSpec.recipe; every entry has the signature of quantize_int8_static
QUANTIZERS: Registry[Callable[..., Any]] = Registry("quantizer")
QUANTIZERS.register("int8", "harness.compress.quantize:quantize_int8_static")
QUANTIZERS.register("int8-trt", "harness.compress.trt_qdq:quantize_int8_tensorrt")
QUANTIZERS.register("int8-dynamic", "harness.compress.quantize:quantize_int8_dynamic")
QUANTIZERS.register("fp16", "harness.compress.half:convert_fp16")

#: the artifact format each quantization recipe writes (the TensorRT placement is its own format)
QUANT_FORMATS = {"int8": "onnx", "int8-dynamic": "onnx", "fp16": "onnx", "int8-trt": "onnx-trt-qdq"}
