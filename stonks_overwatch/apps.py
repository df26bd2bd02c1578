from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings


class StonksOverwatchConfig(AppConfig):
    name = "stonks_overwatch"
    verbose_name = "Stonks Overwatch"

    def ready(self) -> None:
        # Bind @shared_task to the project's Celery app (configured from these settings).
        # Loaded here rather than in the package __init__ so that importing the legacy core
        # (as process-isolated plugins do) never pulls in Django or Celery.
        from . import celery  # noqa: F401

        if getattr(settings, "PLUGINS_REGISTER_LEGACY", True):
            from .core.registry_setup import register_legacy_brokers

            register_legacy_brokers()
