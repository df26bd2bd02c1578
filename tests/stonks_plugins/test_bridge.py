"""The bridge into the legacy ``BrokerRegistry`` (stonks_plugins.legacy.bridge): a broker
plugin appears there with the services it offers, whether its manifest names the service
classes (``services``) or only its capabilities, leaving the classes to its plugin class
(``entry_points.main``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.registry import BrokerRegistry
from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins.legacy.bridge import LazyService
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from tests.stonks_overwatch.test_home import page, symbols

pytestmark = pytest.mark.django_db
NAME = "capabilities-only"

PLUGIN_CLASS = '''"""Service classes named in code, not in the manifest."""

from stonks_plugins.sdk import BaseBrokerPlugin, ServiceType

from .services import PortfolioService


class CapabilitiesOnly(BaseBrokerPlugin):
    def get_services(self):
        return {ServiceType.PORTFOLIO: PortfolioService}
'''


@pytest.fixture
def capabilities_only(plugin_dirs, settings) -> Path:  # type: ignore[no-untyped-def]
    """The healthy fixture rewritten so that its manifest has no ``services`` map: only
    ``capabilities.services`` and a plugin class."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    folder: Path = plugin_dirs.add("healthy-fixture", as_name=NAME)
    path = folder / "plugin_manifest.json"
    data = json.loads(path.read_text())
    data["plugin"]["name"] = NAME
    del data["services"]
    data["entry_points"] = {"main": "healthy.plugin:CapabilitiesOnly"}
    path.write_text(json.dumps(data))
    (folder / "healthy" / "plugin.py").write_text(PLUGIN_CLASS)
    return folder


def test_capabilities_only_broker_is_registered_with_its_declared_services(
    capabilities_only: Path,
) -> None:
    manager.sync()
    assert Plugin.objects.get(name=NAME).state == "active"
    registry = BrokerRegistry()
    assert NAME in registry.get_registered_brokers()
    assert registry.get_broker_capabilities(NAME) == [ServiceType.PORTFOLIO]
    provider = registry.get_service_class(NAME, ServiceType.PORTFOLIO)
    assert isinstance(provider, LazyService)
    assert not registry.broker_supports_service(NAME, ServiceType.TRANSACTION)
    [entry] = BrokerFactory().create_service(NAME, "portfolio").get_portfolio()
    assert entry.symbol == "HLTH"


def test_capabilities_only_broker_shows_on_the_home_page(  # type: ignore[no-untyped-def]
    capabilities_only: Path, admin_client_logged
) -> None:
    manager.sync()
    assert symbols(page(admin_client_logged))[NAME] == {"HLTH"}
