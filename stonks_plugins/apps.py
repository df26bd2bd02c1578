"""App start-up, and the one place the plugin system's parts are wired together.

``ready()`` writes nothing, imports no plugin code and never raises because of a plugin: it
warms the discovery cache (no database), installs the boundary's reporting hooks and the
spawn set-up of process-isolated plugins' children, connects
the alert triggers (:mod:`.monitoring.notify`), and hooks the serving runtime into the core -
the registry asks it to refresh before each read, the factory asks it for plugin configs and
wraps every service it builds in a bounded call. The
database is consulted only on the first registry read (after migrations, in a request or a
task). Plugin code is loaded by each serving process's background runtime, started by the
WSGI application and by Celery's worker processes, never by ``manage.py`` commands.
"""

from __future__ import annotations

import logging

from django.apps import AppConfig
from django.utils.translation import gettext_lazy

logger = logging.getLogger(__name__)


class StonksPluginsConfig(AppConfig):
    name = "stonks_plugins"
    verbose_name = gettext_lazy("Plugins")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import deploy_checks
        from .conf import plugin_settings
        from .monitoring import notify
        from .trust import install as install_trust  # its system checks, the loader's gate

        deploy_checks.register()
        install_trust()
        notify.connect()  # alerts on failures and recoveries (nothing sent without targets)
        if plugin_settings.SAFE_MODE:
            logger.warning("PLUGINS_SAFE_MODE is on: no plugin code will be loaded")
            return
        try:
            _wire()
        except Exception:  # start-up must survive anything a plugin folder can do
            logger.exception("plugin discovery failed at start-up; plugins are unavailable")


def _wire() -> None:
    from stonks_overwatch.core.factory import BrokerFactory
    from stonks_overwatch.core.registry import BrokerRegistry

    from . import reporting
    from .discovery import discover
    from .logs import store as log_store
    from .registry import plugin_registry
    from .runtime.calls import wrap_service
    from .runtime.serving import serving
    from .sandbox.process import spawn

    spawn.install()  # how process-isolated plugins' children start (no secrets, no __main__)
    reporting.configure(plugin_registry)
    log_store.install()  # plugins' log records kept at PLUGINS_LOG_LEVEL
    factory = BrokerFactory()
    factory.add_config_source(serving.config_source)
    factory.add_service_wrapper(wrap_service)
    discover()
    BrokerRegistry().add_refresh_hook(serving.refresh)
