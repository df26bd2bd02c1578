"""App start-up: discover plugins and hand their services to the legacy registry, lazily.

``ready()`` writes nothing, imports no plugin code and never raises because of a plugin: the
database is consulted only on the first registry read (after migrations, in a request or a
task), and a broken plugin only ever becomes an error on its own row.
"""

from __future__ import annotations

import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class StonksPluginsConfig(AppConfig):
    name = "stonks_plugins"
    verbose_name = "Plugins"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from .legacy.bridge import install_bridge

        if settings.PLUGINS_SAFE_MODE:
            logger.warning("PLUGINS_SAFE_MODE is on: no plugin code will be loaded")
            return
        try:
            install_bridge()
        except Exception:  # start-up must survive anything a plugin folder can do
            logger.exception("plugin discovery failed at start-up; plugins are unavailable")
