"""Lifecycle events as Django signals (the seed's PluginLifecycleEvents).

Host code and plugins subscribe with ``@receiver(plugin_loaded)``. Every signal carries
``name`` (the plugin). Load and unload signals are per process (they fire where the code is
imported or released); ``plugin_state_changed`` fires in the process that made the change,
after its transaction commits. Signals are sent with ``send_robust``: a failing receiver is
logged and never breaks the lifecycle.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger(__name__)

plugin_before_load = Signal()
"""name, candidate: about to import and initialise the plugin in this process."""
plugin_loaded = Signal()
"""name, plugin (the LoadedPlugin): imported and initialised."""
plugin_failed = Signal()
"""name, error (the exception), code (a ReasonCode): loading or running failed."""
plugin_before_unload = Signal()
"""name, plugin: about to shut down and release the plugin in this process."""
plugin_unloaded = Signal()
"""name, leaks (a dict; empty when everything was released)."""
plugin_state_changed = Signal()
"""name, from_state, to_state, reason, actor, code (the reason code when to_state is
``error``, else ""): a committed state transition."""


def emit(signal: Signal, sender: Any, **kwargs: Any) -> None:
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "receiver %r of a plugin lifecycle signal for '%s' raised %s: %s",
                receiver,
                kwargs.get("name"),
                type(result).__name__,
                result,
            )
