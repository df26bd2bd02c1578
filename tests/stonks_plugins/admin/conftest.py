"""Admin console fixtures: a plugin folder with the config fixture and a healthy broker, an
operator (superuser) and a reader (staff with ``view_plugin`` only), both logged in."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin

PLUGINS = "/admin/stonks_plugins/plugin/"
SECRET = "hunter2-very-secret"
GOOD = {"credentials": {"username": "ana", "password": SECRET}, "settings": {"currency": "USD"}}


def change_url(name: str) -> str:
    return f"{PLUGINS}{Plugin.objects.get(name=name).pk}/change/"


def page(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.content.decode())


def shown_messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def console(plugin_dirs, db) -> Any:  # type: ignore[no-untyped-def]
    """config-fixture and healthy-fixture, synced (both active); ``add`` puts more in."""
    plugin_dirs.add("config-fixture")
    plugin_dirs.add("healthy-fixture")
    manager.sync(actor="setup")
    return plugin_dirs


@pytest.fixture
def operator(client: Client, django_user_model) -> Client:  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def reader(django_user_model) -> Client:  # type: ignore[no-untyped-def]
    """Staff with only ``stonks_plugins.view_plugin``: sees everything, changes nothing."""
    user = django_user_model.objects.create_user("rita", "rita@example.com", "pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="stonks_plugins", codename="view_plugin")
    )
    c = Client()
    c.force_login(user)
    return c
