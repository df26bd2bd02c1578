"""A background retry of a plugin whose last failure may pass (``store.RETRYABLE_CODES``),
asked for by Celery beat's schedule in a worker process; a success brings the plugin back
to ``active`` through the registry's recovery hook."""

from __future__ import annotations

from ..conf import plugin_settings
from ..errors import ReasonCode
from ..registry import plugin_registry
from . import loads, outbox


def retry_plugin(name: str, code: str = "") -> bool:
    """Load the plugin here if its backoff allows; True when its code is loaded. A plugin in
    ``circuit_open`` that is loaded already failed in its calls, not its load: only the
    circuit's half-open trial brings it back (saying so here would make it flap). The caller
    brings the served set up to date first, once for a round of retries (a refresh reads
    every plugin's row)."""
    if name not in plugin_registry.known():
        return False
    if plugin_registry.peek(name) is not None:
        return code != ReasonCode.CIRCUIT_OPEN.value
    # A retry: after an earlier failure a new attempt starts (once its backoff is over).
    outcome = loads.wait_all([name], float(plugin_settings.CALL_TIMEOUT), retry=True)
    outbox.settle()
    return outcome.get(name) is None and plugin_registry.peek(name) is not None
