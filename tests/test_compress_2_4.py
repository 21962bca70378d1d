"""2:4 semi-structured sparsity: the pruner's pattern, and the numpy validator on exported files."""

from __future__ import annotations

import numpy as np
import pytest

from harness.compress.semistructured import mask_2_4, semistructured_prune
from harness.config import QuantSpec
from harness.export.inspect import validate_2_4
from harness.progress import ProgressReporter
from harness.sparsity import check_2_4

SILENT = ProgressReporter()


def test_validator_checks_groups_along_the_given_axis_only():
    w = np.zeros((2, 8), np.float32)
    w[:, [0, 1, 4, 5]] = 1.0  # along axis 1: groups (0..3) and (4..7) each hold 2 zeros
    assert check_2_4(w, axis=1).compliant and check_2_4(w, axis=1).n_groups == 4
    w[0, 2] = 1.0  # one group now has a single zero
    assert check_2_4(w, axis=1).n_violations == 1 and not check_2_4(w, axis=1).compliant
    assert not check_2_4(np.ones((4, 6)), axis=1).eligible  # 6 is not a multiple of 4
    conv = np.ones((3, 8, 2, 2))
    conv[:, ::2] = 0  # zeros alternate along the input channels
    assert check_2_4(conv, axis=1).compliant and not check_2_4(conv, axis=0).eligible


def test_validator_reads_a_quantized_zero_as_the_zero_point():
    q = np.array([[128, 128, 7, 200]], np.uint8)
    assert check_2_4(q, axis=1, zero_point=np.uint8(128)).compliant
    assert not check_2_4(q, axis=1).compliant


def test_mask_keeps_the_two_largest_of_every_group_along_the_input_channels():
    import torch

    torch.manual_seed(0)
    w = torch.randn(6, 8, 3, 3)
    mask = mask_2_4(w)
    groups = mask.movedim(1, -1).reshape(-1, 4)
    assert torch.all(groups.sum(1) == 2)
    kept = (w.abs() * mask).movedim(1, -1).reshape(-1, 4)
    dropped = (w.abs() * (1 - mask)).movedim(1, -1).reshape(-1, 4)
    assert torch.all(kept.max(1).values >= dropped.max(1).values)
    assert check_2_4((w * mask).numpy(), axis=1).compliant


@pytest.fixture(scope="module")
def pruned_2_4(tiny_model, tiny_dataset, tmp_path_factory):
    from harness.export.onnx import export_onnx, export_program

    options = {"finetune_epochs": 1, "distill": True, "temperature": 4.0, "alpha": 0.5}
    result = semistructured_prune(tiny_model, 0.5, options, tiny_dataset, 0, SILENT, "2:4")
    out = tmp_path_factory.mktemp("two_four")
    program = export_program(result.model, tiny_dataset.evaluation.x[:1], out / "m.pt2")
    export_onnx(program, tiny_dataset.evaluation.x[:1], out / "m.onnx")
    return result, out / "m.onnx"


def test_2_4_pruning_with_distillation_survives_fine_tuning_and_export(pruned_2_4, tiny_dataset):
    from tests.conftest import logits_of

    result, onnx_path = pruned_2_4
    checks = validate_2_4(onnx_path)
    eligible = {n: c for n, c in checks.items() if c.eligible}
    assert len(eligible) == len(result.details["layers_pruned"]) == len(checks) - 1
    assert all(c.compliant for c in eligible.values())  # the mask was held while the weights trained
    assert list(result.details["layers_skipped"].values()) == ["reduction size 1 is not a multiple of 4"]  # grey stem
    assert result.details["distilled"] is True
    x, y = tiny_dataset.evaluation.x, tiny_dataset.evaluation.y
    assert np.mean(logits_of(result.model, x).argmax(1) == y) > 0.5


def test_2_4_pattern_is_still_there_after_int8_quantization(pruned_2_4, tiny_dataset, tmp_path):
    from harness.compress.quantize import quantize_int8_static

    _, onnx_path = pruned_2_4
    out = tmp_path / "q.onnx"
    quantize_int8_static(onnx_path, out, tiny_dataset.calibration.x, QuantSpec(), reduce_range=True)
    checks = validate_2_4(out)
    assert sum(c.compliant for c in checks.values()) == sum(c.eligible for c in checks.values()) >= 5


def test_a_dense_model_fails_the_2_4_validator(tiny_onnx):
    checks = validate_2_4(tiny_onnx)
    assert any(c.eligible for c in checks.values())
    assert not any(c.compliant for c in checks.values())
