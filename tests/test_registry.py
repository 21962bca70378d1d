from __future__ import annotations

import sys

import pytest

from harness.errors import UnknownNameError
from harness.registry import Registry


def test_targets_are_imported_only_when_used():
    reg: Registry = Registry("thing")
    reg.register("json", "json:dumps")
    reg.register("never", "a_module_that_does_not_exist:x")
    assert reg.names() == ["json", "never"]  # listing imports nothing
    import json

    assert reg.get("json") is json.dumps
    assert "a_module_that_does_not_exist" not in sys.modules


def test_unknown_name_suggests_a_close_one():
    reg: Registry = Registry("runtime")
    reg.register("onnxruntime", "json:dumps")
    with pytest.raises(UnknownNameError, match="did you mean 'onnxruntime'"):
        reg.get("onnxrutime")


def test_conflicting_registration_is_refused():
    reg: Registry = Registry("thing")
    reg.register("a", "json:dumps")
    reg.register("a", "json:dumps")  # idempotent
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", "json:loads")


def test_unregister_and_temporarily_leave_the_table_as_it_was():
    reg: Registry = Registry("thing")
    reg.register("b", "json:dumps")
    reg.register("a", "json:loads")
    assert reg.in_order() == ["b", "a"] and reg.names() == ["a", "b"]
    with reg.temporarily("c", "json:dump"):
        import json

        assert reg.get("c") is json.dump and reg.in_order() == ["b", "a", "c"]
    assert "c" not in reg
    reg.unregister("b")
    reg.unregister("never-registered")
    assert reg.in_order() == ["a"]
