"""``plugins sync`` starts what it finds: new or changed plugins are imported and
initialised right away, within ``PLUGINS_SYNC_LOAD_TIMEOUT`` (or what is left of a request's
budget), so a plugin whose code cannot be imported, raises or hangs is in ``error`` with its
reason code when sync returns - not after some user's request happens to load it.

The loads run on background threads like any other (:mod:`.loads`): one that is still
running at the bound is recorded as ``timeout`` (retried with backoff, like every retryable
failure) and goes on; the process that serves it keeps the result.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from .. import store
from ..conf import plugin_settings
from ..errors import PluginError, ReasonCode
from ..registry import NotRegistered, plugin_registry
from . import budget, loads, outbox
from .serving import serving


def start_plugins(names: Iterable[str], actor: str = "system") -> dict[str, PluginError | None]:
    """Load each named plugin this process serves; record failures. Returns the outcome per
    plugin (None: active and initialised)."""
    serving.refresh(force=True)
    known = plugin_registry.known()
    wanted = sorted({n for n in names if n in known})
    if not wanted:
        return {}
    bound = full = float(plugin_settings.SYNC_LOAD_TIMEOUT)
    scope = budget.current()
    if scope is not None:
        # In a request (the console's or the API's sync): what is left of its budget. A
        # load still running then is no failure yet; it records its own outcome.
        bound = min(bound, max(0.0, scope.deadline - time.monotonic()))
    outcomes = loads.wait_all(wanted, bound)
    outbox.drain()  # the loads' own failures (import errors, refusals...), written now
    result: dict[str, PluginError | None] = {}
    for name, error in outcomes.items():
        if error is None:
            result[name] = None
            continue
        if isinstance(error, NotRegistered):
            continue  # withdrawn meanwhile by a change made elsewhere (a disable)
        if not isinstance(error, PluginError):
            error = PluginError(
                name, ReasonCode.INITIALIZE_FAILED, f"{type(error).__name__}: {error}"
            )
        if error.code is ReasonCode.TIMEOUT and loads.running(name):
            if bound < full:
                continue  # cut short by the request, not by the sync bound
            store.mark_failed(error, actor)  # still running: nobody else has said so yet
        result[name] = error
    serving.invalidate()
    return result
