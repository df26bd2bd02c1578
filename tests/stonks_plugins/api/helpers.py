"""Helpers shared by the API tests."""

from __future__ import annotations

from typing import Any

from stonks_plugins.models import Plugin

API = "/api/v1"


def plugin_row(name: str, **fields: Any) -> Plugin:
    defaults: dict[str, Any] = {
        "version": "1.0.0",
        "type": "broker",
        "source": "directory",
        "state": "active",
        "enabled": True,
        "display_name": name.replace("-", " ").title(),
        "location": f"/srv/plugins/{name}",
    }
    return Plugin(name=name, **{**defaults, **fields})


def error_of(response: Any) -> dict[str, Any]:
    """The error body, after checking it has the one shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    return error  # type: ignore[no-any-return]
