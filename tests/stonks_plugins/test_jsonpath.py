"""The one JSON-path helper (issue 16): how paths in error messages are spelled, and the
lookups the config system, its secrets and the console's config form share."""

from __future__ import annotations

from typing import Any

from stonks_plugins import jsonpath
from stonks_plugins.config.schema import ANY_KEY, ITEM, json_path


def test_paths_are_spelled_alike_everywhere() -> None:
    assert jsonpath.join(("accounts", 0, "password")) == "$.accounts[0].password"
    assert jsonpath.join(()) == "$"
    assert json_path(("accounts", ITEM, "password")) == "$.accounts[*].password"
    assert json_path(("tokens", ANY_KEY)) == "$.tokens.*"
    # The API quotes what a request body may hold as a key and is no name.
    assert jsonpath.child("$.settings", "odd key", quote=True) == '$.settings["odd key"]'
    assert jsonpath.child("$", 'say "hi"', quote=True) == '$["say \\"hi\\""]'
    assert jsonpath.child("$", "currency", quote=True) == "$.currency"


def test_lookup_tells_a_missing_value_from_a_null_one() -> None:
    data: dict[str, Any] = {"a": {"b": [10, None]}, "c": None}
    assert jsonpath.get(data, ("a", "b", 0)) == 10
    assert jsonpath.get(data, ("a", "b", -1)) is None and jsonpath.has(data, ("a", "b", 1))
    assert jsonpath.get(data, ("a", "b", 2)) is None and not jsonpath.has(data, ("a", "b", 2))
    assert not jsonpath.has(data, ("a", "x")) and jsonpath.has(data, ("c",))
    assert jsonpath.get(data, ("c", "d")) is None  # through a null: nothing there
    assert jsonpath.get(data, ()) is data


def test_put_makes_the_objects_on_the_way_and_drop_removes_a_key() -> None:
    data: dict[str, Any] = {"settings": "not an object", "list": [{"k": 1}]}
    jsonpath.put(data, ("settings", "currency"), "EUR")
    jsonpath.put(data, ("credentials", "password"), "x")
    jsonpath.put(data, ("list", 0, "k"), 2)
    assert data == {
        "settings": {"currency": "EUR"},
        "credentials": {"password": "x"},
        "list": [{"k": 2}],
    }
    jsonpath.drop(data, ("credentials", "password"))
    jsonpath.drop(data, ("nowhere", "key"))  # nothing there: nothing to do
    assert data["credentials"] == {}
