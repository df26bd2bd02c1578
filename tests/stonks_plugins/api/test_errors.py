"""One error shape for every error, whatever raised it."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from stonks_plugins.api.errors import error_details
from stonks_plugins.manager import manager

from .helpers import API, error_of

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [f"{API}/nowhere/", f"{API}/plugins", f"{API}/plugins/x/y/z/", f"{API}/plugins/x/config"],
)
def test_unknown_endpoints_are_404_in_the_shape_not_html(reader, path: str) -> None:
    response = reader.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert error_of(response)["code"] == "not_found"


def test_wrong_method_is_405_with_allow(reader) -> None:
    response = reader.delete(f"{API}/plugins/")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_get_on_an_action_is_405(operator) -> None:
    response = operator.get(f"{API}/plugins/x/enable/")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_unexpected_failure_is_500_in_the_shape_and_hides_internals(reader, monkeypatch) -> None:
    def broken(name: str) -> None:
        raise RuntimeError("connection string postgres://admin:pw@db/prod")

    monkeypatch.setattr(manager, "get", broken)
    response = reader.get(f"{API}/plugins/anything/")
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "server_error"
    assert "postgres" not in response.content.decode()


def test_validation_details_name_the_json_path_of_each_bad_field() -> None:
    class Account(serializers.Serializer):
        id = serializers.IntegerField()

    class Config(serializers.Serializer):
        timeout = serializers.IntegerField(min_value=1)
        accounts = Account(many=True)
        settings = serializers.DictField(child=serializers.BooleanField())

    config = Config(
        data={
            "timeout": 0,
            "accounts": [{"id": 1}, {"id": "x"}],
            "settings": {"odd key": "maybe"},
        }
    )
    assert not config.is_valid()
    details = error_details(config.errors)
    assert {d["path"] for d in details} == {
        "$.timeout",
        "$.accounts[1].id",
        '$.settings["odd key"]',
    }
    assert all(d["location"] == "body" and d["message"] and d["code"] for d in details)
    assert error_details({"non_field_errors": ["bad"]}) == [
        {"path": "$", "message": "bad", "code": "invalid", "location": "body"}
    ]
    assert error_details({"state": ["bad"]}, location="query")[0]["path"] == "state"
