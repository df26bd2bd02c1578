"""API test fixtures: clients authenticated as users with given permissions, and plugin rows.

Clients authenticate with real tokens (``Authorization: Token ...``), as a dashboard does;
the session path is tested on its own."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from stonks_plugins.models import Plugin


def _perm(codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label="stonks_plugins", codename=codename)


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:  # type: ignore[no-untyped-def]
    """Hashing a password the production way takes ~0.3 s; these tests log in with tokens."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_client(db, django_user_model) -> Callable[..., APIClient]:  # type: ignore[no-untyped-def]
    """``make_client("olivia", "view_plugin", "change_plugin", superuser=False)``."""

    def make(username: str, *perms: str, superuser: bool = False) -> APIClient:
        if superuser:
            user = django_user_model.objects.create_superuser(username, f"{username}@x.io", None)
        else:
            user = django_user_model.objects.create_user(username, f"{username}@x.io", None)
            user.user_permissions.add(*(_perm(p) for p in perms))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        client.user = user  # type: ignore[attr-defined]
        return client

    return make


@pytest.fixture
def reader(make_client) -> APIClient:  # type: ignore[no-untyped-def]
    """May look at everything, change nothing."""
    return make_client("reader", "view_plugin")  # type: ignore[no-any-return]


@pytest.fixture
def operator(make_client) -> APIClient:  # type: ignore[no-untyped-def]
    """May look and change (not a superuser)."""
    return make_client("olivia", "view_plugin", "change_plugin")  # type: ignore[no-any-return]


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def rows(db) -> Callable[..., list[Plugin]]:  # type: ignore[no-untyped-def]
    """``rows(plugin_row(...), ...)`` saves plugin rows without discovery (fast)."""

    def make(*plugins: Plugin) -> list[Plugin]:
        return Plugin.objects.bulk_create(plugins)

    return make
