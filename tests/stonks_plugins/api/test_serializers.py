"""The response shapes: their declared fields are what is served, key for key and in order, as
the OpenAPI schema says; the compiled field machinery gives exactly DRF's own output."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIRequestFactory

from stonks_plugins.api.serializers import (
    SUMMARY_FIELDS,
    PluginDetailSerializer,
    PluginHealthSerializer,
    PluginMetricsSerializer,
    PluginSerializer,
    with_translations,
)
from stonks_plugins.api.serializers.compiled import CompiledSerializer
from stonks_plugins.models import Plugin

from .helpers import API, plugin_row

pytestmark = pytest.mark.django_db


def _odd_rows() -> list[Plugin]:
    """Rows as the engine stores them, and as an old version or a hand edit may have left
    them."""
    (acme,) = Plugin.objects.bulk_create([plugin_row("acme")])
    return [
        plugin_row("plain"),
        plugin_row(
            "signed",
            trust={"status": "signed", "key": "ed25519:AAAA", "locked": True, "trusted": True},
        ),
        plugin_row("half-trust", trust={"status": "unsigned"}),  # the other keys absent
        plugin_row("unknown-trust", trust={"status": "from-the-future"}),
        plugin_row("list-trust", trust=["not", "an", "object"]),
        plugin_row("needs-restart", requires="restart"),
        plugin_row(
            "broken",
            state="error",
            requires="migrate",
            error_code="import_error",
            error_message="connect failed: password=hunter2",
            error_details=[{"password": "hunter2", "line": 3}, "not an object", 7],
            warnings=["found twice"],
        ),
        plugin_row(
            "translated",
            manifest={
                "plugin": {
                    "translations": {"nl": {"display_name": "Vertaald", "description": "NL"}}
                },
                "capabilities": ["not", "an", "object"],
                "services": {"portfolio": "x.Portfolio"},
            },
        ),
        plugin_row("no-manifest", manifest=["not", "an", "object"], error_details={"a": 1}),
        plugin_row("acme:partner", label="partner", instance_of=acme),
    ]


def _drf_output(monkeypatch: pytest.MonkeyPatch, render: Any) -> bytes:
    """``render()`` with DRF's own field machinery instead of the compiled one."""
    with monkeypatch.context() as patch:
        patch.setattr(
            CompiledSerializer, "to_representation", serializers.Serializer.to_representation
        )
        patch.setattr(CompiledSerializer, "get_fields", serializers.Serializer.get_fields)
        return JSONRenderer().render(render())


@pytest.mark.parametrize("language", ["en", "nl"])
def test_the_compiled_fields_give_drfs_output_byte_for_byte(
    rows, monkeypatch: pytest.MonkeyPatch, settings, language: str
) -> None:  # type: ignore[no-untyped-def]
    settings.LANGUAGE_CODE = language
    rows(*_odd_rows())
    request = APIRequestFactory().get(f"{API}/plugins/")
    context = {"request": request}

    def listing() -> Any:
        page = with_translations(Plugin.objects.only(*SUMMARY_FIELDS)).order_by("name")
        return PluginSerializer(list(page), many=True, context=context).data

    def details() -> Any:
        return [PluginDetailSerializer(p, context=context).data for p in Plugin.objects.all()]

    for render in (listing, details):
        served = JSONRenderer().render(render())
        assert served == _drf_output(monkeypatch, render)
    assert b"hunter2" not in JSONRenderer().render(details())
    translated = next(p for p in listing() if p["name"] == "translated")
    assert translated["display_name"] == ("Vertaald" if language == "nl" else "Translated")


def test_the_output_has_the_declared_fields_in_the_schemas_order(rows) -> None:  # type: ignore[no-untyped-def]
    rows(*_odd_rows())
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    request = APIRequestFactory().get(f"{API}/plugins/")
    for plugin in Plugin.objects.all():
        summary = PluginSerializer(plugin, context={"request": request}).data
        detail = PluginDetailSerializer(plugin, context={"request": request}).data
        assert list(summary) == list(components["Plugin"]["properties"])
        assert list(detail) == list(components["PluginDetail"]["properties"])
        assert set(components["PluginDetail"]["required"]) == set(detail)
        if detail["trust"] is not None:
            assert list(detail["trust"]) == list(components["PluginTrust"]["properties"])


def test_odd_stored_values_read_as_their_documented_shape(rows) -> None:  # type: ignore[no-untyped-def]
    rows(*_odd_rows())
    shown = {p.name: PluginDetailSerializer(p).data for p in Plugin.objects.all()}
    assert shown["half-trust"]["trust"] == {
        "status": "unsigned",
        "key": None,
        "locked": False,
        "problem": None,
        "trusted": False,
    }
    assert shown["unknown-trust"]["trust"] is None and shown["list-trust"]["trust"] is None
    assert shown["needs-restart"]["restart_required"] is True
    assert shown["broken"]["migrate_required"] and not shown["broken"]["restart_required"]
    assert shown["broken"]["error"]["message"] == "connect failed: password=********"
    assert shown["broken"]["error_details"] == [{"password": "********", "line": 3}]
    assert shown["translated"]["capabilities"] == {}
    assert shown["no-manifest"]["manifest"] == {} and shown["no-manifest"]["error_details"] == []
    assert shown["acme:partner"]["instance_of"] == "acme" and shown["plain"]["instance_of"] is None
    assert shown["acme:partner"]["links"]["health"].endswith("/plugins/acme:partner/health/")


def test_health_and_metrics_shapes_come_from_their_fields(rows) -> None:  # type: ignore[no-untyped-def]
    (plugin,) = rows(plugin_row("quiet", consecutive_unhealthy=2))
    health = PluginHealthSerializer({"plugin": plugin, "latest": None, "history": []}).data
    assert health == {
        "plugin": "quiet",
        "state": "active",
        "enabled": True,
        "consecutive_unhealthy": 2,
        "latest": None,
        "history": [],
    }
    snapshot = {
        "plugin": "quiet",
        "circuit": {
            "state": "closed",
            "failures": 0,
            "threshold": 5,
            "opens": 0,
            "delay": 0.0,
            "retry_in": 0.0,
        },
        "metrics": {
            "__total__": {
                "calls": 0,
                "errors": 0,
                "rejected": 0,
                "timeouts": 0,
                "timed": 0,
                "avg_ms": 0.0,
                "max_ms": 0.0,
            }
        },
        "abandoned": [{"operation": "get_portfolio", "thread": "t-1", "timeout": 5}],
        "threads": [],
        "tracked": [],
    }
    metrics = PluginMetricsSerializer(snapshot).data
    assert list(metrics) == [*snapshot, "process"]
    assert "histogram" not in metrics["metrics"]["__total__"]  # absent in the totals
    # A timeout the engine counted as an integer stays one.
    assert JSONRenderer().render(metrics["abandoned"]) == (
        b'[{"operation":"get_portfolio","thread":"t-1","timeout":5}]'
    )


def test_a_health_check_answer_masks_a_secret_in_the_plugins_error(operator, rows) -> None:  # type: ignore[no-untyped-def]
    rows(
        plugin_row(
            "leaky",
            state="error",
            error_code="initialize_failed",
            error_message="login refused: password=hunter2",
        )
    )
    response = operator.post(f"{API}/plugins/leaky/health/")
    assert response.status_code == 200, response.content
    assert response.json()["error"] == {
        "code": "initialize_failed",
        "message": "login refused: password=********",
    }
