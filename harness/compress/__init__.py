"""Compression recipes: pruning (unstructured, channel), fine-tuning, post-training quantization."""

from harness.registry import Registry

PRUNERS = Registry("pruner")
PRUNERS.register("magnitude", "harness.compress.prune:magnitude_prune")
PRUNERS.register("channel", "harness.compress.prune:channel_prune")

QUANTIZERS = Registry("quantizer")
QUANTIZERS.register("int8", "harness.compress.quantize:quantize_int8_static")
