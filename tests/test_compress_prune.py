"""Unstructured magnitude pruning (global / layer, one-shot / gradual), distillation, and their specs."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from harness.compress.prune import channel_prune, cubic_sparsity, kept_channels, magnitude_masks, magnitude_prune
from harness.compress.variants import expand_variants
from harness.config import ExperimentSpec
from harness.errors import ConfigError
from harness.experiment import load_experiment
from harness.progress import ProgressReporter

SILENT = ProgressReporter()


def _layer_sparsity(model) -> list[float]:
    import torch.nn as nn

    return [float((m.weight == 0).float().mean()) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _overall_sparsity(model) -> float:
    import torch.nn as nn

    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def test_layer_scope_prunes_every_layer_to_the_same_fraction_and_global_scope_does_not():
    import torch

    torch.manual_seed(0)
    weights = [torch.randn(8, 4) * 0.01, torch.randn(16, 8) * 10.0]  # one small-magnitude, one large layer
    per_layer = magnitude_masks(weights, 0.5, "layer")
    assert [float((m == 0).float().mean()) for m in per_layer] == [0.5, 0.5]
    global_ = magnitude_masks(weights, 0.5, "global")
    zeros = [int((m == 0).sum()) for m in global_]
    assert sum(zeros) == round(0.5 * (32 + 128))
    assert zeros[0] == 32  # one threshold for all: the small-magnitude layer goes first, entirely


def test_cubic_schedule_starts_fast_and_ends_exactly_at_the_target():
    values = [cubic_sparsity(0.8, k, 4) for k in range(1, 5)]
    assert values[-1] == pytest.approx(0.8)
    assert all(a < b for a, b in pairwise(values))
    increments = np.diff([0.0, *values])
    assert all(a > b for a, b in pairwise(increments))  # Zhu & Gupta: prune most early


def test_layer_scope_one_shot_pruning_reaches_the_fraction_in_every_layer(tiny_model, tiny_dataset):
    result = magnitude_prune(tiny_model, 0.6, {"scope": "layer", "finetune_epochs": 1}, tiny_dataset, 0, SILENT, "m")
    assert all(s == pytest.approx(0.6, abs=0.01) for s in _layer_sparsity(result.model))
    assert not any("weight_orig" in n for n, _ in result.model.named_parameters())  # made permanent
    assert result.details["scope"] == "layer" and result.details["sparsity_steps"] == [0.6]


def test_gradual_schedule_prunes_in_increasing_steps_between_fine_tuning_and_ends_at_the_target(tiny_model, tiny_dataset):
    from tests.conftest import logits_of

    options = {"schedule": "gradual", "steps": 3, "finetune_epochs": 2}
    result = magnitude_prune(tiny_model, 0.8, options, tiny_dataset, 0, SILENT, "g")
    steps = result.details["sparsity_steps"]
    assert len(steps) == 3 and steps == sorted(steps) and steps[-1] == pytest.approx(0.8)
    assert _overall_sparsity(result.model) == pytest.approx(0.8, abs=0.005)
    x, y = tiny_dataset.evaluation.x, tiny_dataset.evaluation.y
    assert np.mean(logits_of(result.model, x).argmax(1) == y) > 0.5  # fine-tuned between steps, still useful
    assert _overall_sparsity(tiny_model) < 0.01  # the baseline is never modified


def test_distillation_loss_is_cross_entropy_at_alpha_zero_and_zero_soft_term_for_a_perfect_student():
    import torch
    import torch.nn.functional as F

    from harness.compress.finetune import distillation_loss

    torch.manual_seed(0)
    logits, labels = torch.randn(6, 10), torch.randint(0, 10, (6,))
    assert torch.allclose(distillation_loss(logits, logits * 3, labels, 4.0, 0.0), F.cross_entropy(logits, labels))
    assert torch.allclose(distillation_loss(logits, logits, labels, 4.0, 1.0), torch.zeros(()), atol=1e-6)
    assert distillation_loss(logits, -logits, labels, 4.0, 1.0) > 0


def test_channel_pruning_with_distillation_uses_the_dense_teacher_and_records_macs(tiny_model, tiny_dataset):
    options = {"finetune_epochs": 1, "round_to": 4, "distill": True, "temperature": 3.0, "alpha": 0.7}
    result = channel_prune(tiny_model, 0.5, options, tiny_dataset, 0, SILENT, "c")
    assert result.details["distilled"] is True
    assert result.macs_after < 0.6 * result.macs_before and result.params_after < result.params_before
    assert all(w % 4 == 0 for w in result.details["conv_out_channels"].values())


@pytest.mark.parametrize(
    ("channels", "amount", "kept"),
    [(32, 0.1, 32), (32, 0.3, 24), (32, 0.5, 16), (64, 0.3, 48), (128, 0.3, 88), (32, 0.9, 8), (8, 0.5, 8), (12, 0.0, 12)],
)
def test_channel_counts_round_to_the_nearest_multiple_never_below_one_multiple_nor_above_the_layer(channels, amount, kept):
    assert kept_channels(channels, amount, 8) == kept


def test_channel_pruning_keeps_the_nearest_multiple_in_every_layer_not_torch_pruning_floor():
    import torch

    from harness.data.base import Dataset, Split
    from harness.models.zoo import small_cnn

    rng = np.random.default_rng(0)
    split = Split("train", rng.standard_normal((64, 1, 16, 16)).astype(np.float32), rng.integers(0, 10, 64), np.arange(64))
    dataset = Dataset("noise", [str(i) for i in range(10)], split, split, split)
    torch.manual_seed(0)
    result = channel_prune(small_cnn(1, 10).eval(), 0.3, {"finetune_epochs": 0, "round_to": 8}, dataset, 0, SILENT, "c")
    # 32 * 0.7 = 22.4 -> 24 (torch-pruning's own round_to floors it to 16, pruning half the layer)
    assert list(result.details["conv_out_channels"].values()) == [24, 24, 48, 48, 88]


def _bn_model_and_data(n: int):
    import torch
    import torch.nn as nn

    from harness.data.base import Dataset, Split

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten()).eval()
    rng = np.random.default_rng(0)
    x = (3.0 + 2.0 * rng.standard_normal((n, 1, 6, 6))).astype(np.float32)
    split = Split("train", x, rng.integers(0, 2, n), np.arange(n))
    return model, Dataset("shifted", ["a", "b"], split, split, split)


def test_batchnorm_recalibration_sets_running_statistics_to_those_of_the_training_split():
    import torch

    from harness.compress.finetune import recalibrate_batchnorm

    model, dataset = _bn_model_and_data(128)  # two full batches: the average of batch means is the mean
    conv, bn = model[0], model[1]
    bn.running_mean.fill_(-7.0)
    bn.running_var.fill_(50.0)
    seen_training_flags = []
    model[2].register_forward_hook(lambda m, i, o: seen_training_flags.append(m.training))
    assert recalibrate_batchnorm(model, dataset, seed=0) == 1
    with torch.no_grad():
        out = conv(torch.from_numpy(dataset.train.x))
    assert torch.allclose(bn.running_mean, out.mean(dim=(0, 2, 3)), atol=1e-4)
    per_batch_var = torch.stack([out[i : i + 64].var(dim=(0, 2, 3)) for i in (0, 64)]).mean(0)  # unbiased, per batch
    assert torch.allclose(bn.running_var, per_batch_var, rtol=1e-3)
    assert bn.momentum == 0.1 and not model.training and not bn.training
    assert seen_training_flags and not any(seen_training_flags)  # dropout stayed in eval mode


def test_batchnorm_recalibration_survives_a_one_sample_tail_batch_and_models_without_batchnorm():
    import torch.nn as nn

    from harness.compress.finetune import recalibrate_batchnorm

    model, dataset = _bn_model_and_data(65)
    model = nn.Sequential(*model[:2], nn.Flatten(), nn.Linear(64, 3), nn.BatchNorm1d(3)).eval()
    assert recalibrate_batchnorm(model, dataset, seed=0) == 2  # the 65th image alone would raise in BatchNorm1d
    assert recalibrate_batchnorm(nn.Sequential(nn.Flatten(), nn.Linear(36, 2)), dataset, seed=0) == 0


def test_pruning_without_fine_tuning_recalibrates_batchnorm_unless_told_not_to(tiny_model, tiny_dataset):
    from tests.conftest import logits_of

    x, y = tiny_dataset.evaluation.x, tiny_dataset.evaluation.y
    results = {
        recal: channel_prune(tiny_model, 0.5, {"finetune_epochs": 0, "round_to": 4, "bn_recalibration": recal},
                             tiny_dataset, 0, SILENT, "c")
        for recal in (True, False)
    }
    accuracy = {recal: float(np.mean(logits_of(r.model, x).argmax(1) == y)) for recal, r in results.items()}
    assert results[True].details["bn_recalibration"] is True and results[False].details["bn_recalibration"] is False
    assert accuracy[True] > accuracy[False]


def test_variant_names_state_scope_schedule_and_distillation():
    spec = ExperimentSpec.model_validate(
        {
            "prune": [
                {"method": "magnitude", "sparsity": [0.5]},
                {"method": "magnitude", "sparsity": [0.5], "scope": "layer", "schedule": "gradual", "distill": True},
                {"method": "channel", "ratio": [0.5], "distill": True},
                {"method": "2:4"},
                {"method": "channel", "ratio": [0.3], "bn_recalibration": False},
            ],
            "quantize": [
                {"apply_to": ["dense"]},
                {"apply_to": ["dense"], "method": "dynamic"},
                {"apply_to": ["dense"], "precision": "fp16"},
                {"apply_to": ["dense"], "target": "tensorrt"},
            ],
        }
    )
    names = [v.name for v in expand_variants(spec, "base")]
    assert names == [
        "dense", "magnitude-0.5", "magnitude-layer-gradual-0.5-kd", "channel-0.5-kd", "2:4", "channel-0.3-stale-bn",
        "dense+int8", "dense+int8-dynamic", "dense+fp16", "dense+int8-trt",
    ]
    by_name = {v.name: v for v in expand_variants(spec, "base")}
    assert by_name["2:4"].prune_amount == 0.5 and by_name["dense+fp16"].precision == "fp16"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[prune]]\nmethod = "magnitude"\nsparsity = [0.5]\nschedule = "gradual"\nfinetune_epochs = 0\n',
         "finetune_epochs must be at least 1"),
        ('[[prune]]\nmethod = "2:4"\ndistill = true\nfinetune_epochs = 0\n', "distill = true distils during fine-tuning"),
        ('[[prune]]\nmethod = "magnitude"\nsparsity = [0.5]\nscope = "local"\n', "prune.0.magnitude.scope"),
        ('[[quantize]]\nprecision = "fp16"\nmethod = "dynamic"\n', "fp16 has no dynamic variant"),
        ('[[quantize]]\nmethod = "dynamic"\ntarget = "tensorrt"\n', "TensorRT does not parse dynamic quantization"),
    ],
)
def test_incoherent_compression_specs_are_rejected_before_any_work(tmp_path, toml, message):
    path = tmp_path / "e.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


def test_recipe_words_state_pruning_fine_tuning_recalibration_distillation_and_quantization():
    from harness.compress.variants import describe_recipe

    spec = ExperimentSpec.model_validate(
        {
            "prune": [
                {"method": "magnitude", "sparsity": [0.8], "schedule": "gradual", "steps": 3, "distill": True, "finetune_epochs": 1},
                {"method": "channel", "ratio": [0.3], "finetune_epochs": 0, "bn_recalibration": False, "round_to": 16},
            ],
            "quantize": [{"apply_to": ["channel-*"], "calibration_method": "entropy", "per_channel": False},
                         {"apply_to": ["dense"], "precision": "fp16"}],
        }
    )
    recipes = {v.name: describe_recipe(v) for v in expand_variants(spec, "base")}
    assert recipes["dense"] == "dense (no pruning)"
    assert recipes["magnitude-gradual-0.8-kd"] == (
        "magnitude pruning to 80% sparsity (global, gradual over 3 steps); BatchNorm statistics re-estimated after "
        "pruning; 1 fine-tuning epoch at lr 0.0005, distilled from the dense model (T 4, alpha 0.5)"
    )
    assert recipes["channel-0.3-stale-bn+int8"] == (
        "channel pruning at ratio 0.3 (torch-pruning, widths rounded to multiples of 16); BatchNorm statistics kept "
        "from the dense model; no fine-tuning; int8 static QDQ (uint8 activations on x86, int8 elsewhere, per-tensor "
        "weights, entropy calibration on up to 200 calibration images)"
    )
    assert recipes["dense+fp16"] == "dense (no pruning); fp16 weights and compute (float32 inputs and outputs)"
