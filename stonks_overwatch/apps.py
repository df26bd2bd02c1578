from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings


class StonksOverwatchConfig(AppConfig):
    name = "stonks_overwatch"
    verbose_name = "Stonks Overwatch"

    def ready(self) -> None:
        if getattr(settings, "PLUGINS_REGISTER_LEGACY", True):
            from .core.registry_setup import register_legacy_brokers

            register_legacy_brokers()
