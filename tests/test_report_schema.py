"""The RunReport record's schema version: older stored reports are migrated, newer ones refused."""

from __future__ import annotations

import pytest

from harness.errors import StoreError
from harness.records import SCHEMA_VERSION, report_from_dict, to_dict
from tests.card_report import card_report


def test_a_report_round_trips_at_the_current_version():
    report = card_report()
    assert report.schema_version == SCHEMA_VERSION == 2
    assert report_from_dict(to_dict(report)) == report


def test_a_version_1_report_reads_with_what_it_did_not_record_as_none():
    d = to_dict(card_report())
    for key in ("population", "target", "cie_gallery_path"):
        d.pop(key)
    for p in d["points"]:
        for key in ("recipe", "engine", "gpu_timing", "device_state", "bias"):
            p.pop(key)
    d["schema_version"] = 1
    report = report_from_dict(d)
    assert report.schema_version == 2 and report.population == 1 and report.target is None
    assert all(p.recipe is None and p.bias is None and p.device_state is None for p in report.points)
    assert [p.point_id for p in report.points] == [p.point_id for p in card_report().points]


def test_a_report_from_a_newer_harness_is_refused_naming_the_versions():
    d = {**to_dict(card_report()), "schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}.*reads up to version {SCHEMA_VERSION}"):
        report_from_dict(d)
