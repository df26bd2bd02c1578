"""``/api/v1/health/``: usable by a load balancer, with no login, and leaking nothing.

The rule: 503 only when the database or the cache does not answer; enabled plugins in error
make it 200 ``degraded`` with their names (one bad plugin must not empty the pool)."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from stonks_plugins.manager import manager

from .helpers import API, plugin_row

pytestmark = pytest.mark.django_db
URL = f"{API}/health/"


def test_ok_without_login(anon, rows) -> None:
    rows(plugin_row("a"), plugin_row("b"), plugin_row("c", state="disabled", enabled=False))
    response = anon.get(URL)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok"},
        "plugins": {"total": 3, "enabled": 2, "active": 2, "failing_count": 0, "failing": []},
    }


def test_enabled_plugins_in_error_make_it_degraded_not_down(anon, rows) -> None:
    rows(
        plugin_row("good"),
        plugin_row(
            "bad",
            state="error",
            error_code="import_error",
            error_message="ImportError at /srv/secret/path.py",
        ),
        # Switched off by an operator: in error or not, it is not failing.
        plugin_row("off", state="disabled", enabled=False),
    )
    response = anon.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["plugins"]["failing"] == ["bad"] and body["plugins"]["failing_count"] == 1
    # Names and counts only: no messages, paths or codes.
    text = response.content.decode()
    assert "import_error" not in text and "/srv" not in text


def test_database_down_is_503(anon, monkeypatch) -> None:
    def down() -> None:
        raise OperationalError("could not connect to server at 10.0.0.5")

    monkeypatch.setattr(manager, "get_available_plugins", down)
    response = anon.get(URL)
    assert response.status_code == 503
    body = response.json()
    assert body == {
        "status": "unavailable",
        "checks": {"database": "error", "cache": "ok"},
        "plugins": None,
    }
    assert "10.0.0.5" not in response.content.decode()


def test_cache_down_is_503(anon, settings, rows) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    response = anon.get(URL)
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "cache": "error"}


def test_health_ignores_credentials_it_cannot_check(rows) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token bogus")
    assert client.get(URL).status_code == 200
