"""The card's front matter read back by huggingface_hub: license, base model and its relation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.model_names import base_model_name
from harness.report.card import render_card
from harness.report.frontmatter import base_model_relation, card_metadata
from tests.card_report import card_report
from tests.points import make_point


def test_base_model_is_a_file_or_checkpoint_name_and_never_invented():
    assert base_model_name("/models/resnet.onnx") == "resnet.onnx"
    assert base_model_name("nets/prog.pt2") == "prog.pt2"
    assert base_model_name("torchvision:resnet18", "/ckpt/w.pt") == "w.pt"
    for trained_here in ("small-cnn", "torchvision:resnet18", "timm:resnet18", "pkg.nets:factory"):
        assert base_model_name(trained_here) is None


def test_relation_is_pruned_for_any_pruned_point_and_quantized_for_a_quantized_dense_one():
    assert base_model_relation(make_point("a", prune="magnitude", precision="int8")) == "pruned"
    assert base_model_relation(make_point("b", prune="channel")) == "pruned"
    assert base_model_relation(make_point("c", precision="int8")) == "quantized"
    assert base_model_relation(make_point("d", precision="fp16")) == "quantized"
    assert base_model_relation(make_point("e")) is None


def test_license_and_base_model_are_left_out_when_unknown():
    report = replace(card_report(), license=None, base_model=None)
    meta = card_metadata(report, report.points[0])
    assert not {"license", "base_model", "base_model_relation"} & meta.keys()


def test_front_matter_round_trips_through_huggingface_hub_model_card(tmp_path):
    hub = pytest.importorskip("huggingface_hub")
    report = replace(card_report(), base_model="resnet8.onnx")
    chosen = next(p for p in report.points if p.point_id == report.selection.point_id)
    (tmp_path / "card.md").write_text(render_card(report, "md"))
    card = hub.ModelCard.load(tmp_path / "card.md")
    assert card.data.license == "apache-2.0"
    assert card.data.base_model == "resnet8.onnx"
    assert card.data.to_dict()["base_model_relation"] == base_model_relation(chosen) is not None
    assert card.data.pipeline_tag == "image-classification"
    assert card.data.eval_results and card.data.eval_results[0].metric_type == "accuracy"
    assert card.data.eval_results[0].metric_value == pytest.approx(round(chosen.accuracy.top1, 4))
