"""Process isolation: a plugin whose manifest says ``"isolation": "process"`` runs in a child.

The host side is :class:`ProcessHost` (:mod:`.host`), whose :mod:`.supervisor` starts the
child (:mod:`.spawn`, :mod:`.forkserver`, :mod:`.channel`), exchanges requests with it
(:mod:`.wire`, :mod:`.log_relay`), reports how it ended (:mod:`.exits`) and restarts it
(:mod:`.backoff`); :mod:`.proxies` stand for its services. The child side is :mod:`.child`, under
:mod:`.rlimits` and the plugin's permissions. Failures raise :mod:`.errors`.

Nothing here imports Django: the child must start without settings. The spawn set-up is
installed by the app's ``ready()`` (:func:`.spawn.install`), not on import.
"""

from .errors import (
    ProcessCallError,
    ProcessCircuitOpen,
    ProcessCrashed,
    ProcessIsolationError,
    ProcessTimeout,
)
from .exits import CrashRecord
from .host import ProcessHost
from .proxies import ServiceProxy, implementing
from .wire import EXIT_OUT_OF_MEMORY
from .wire import load_reply as _loads

__all__ = [
    "EXIT_OUT_OF_MEMORY",
    "CrashRecord",
    "ProcessCallError",
    "ProcessCircuitOpen",
    "ProcessCrashed",
    "ProcessHost",
    "ProcessIsolationError",
    "ProcessTimeout",
    "ServiceProxy",
    "_loads",
    "implementing",
]
