"""A process-wide count of changes to the plugin code it serves.

Bumped after a plugin's loaded code arrives or leaves (the registry), after a new config is
handed to loaded code, and after the served set changes (the serving runtime). The call
path's caches (:mod:`.runtime.inline`) keep what they resolved together with the count they
read *before* resolving, so a change that lands while they resolve is seen on the next call.
"""

from __future__ import annotations

import itertools
import threading

_counter = itertools.count(1)
_lock = threading.Lock()

current = 0
"""Read as ``generation.current``; compare for equality only."""


def bump() -> None:
    global current
    # Under a lock: two racing bumps must still end on a value no cache has seen.
    with _lock:
        current = next(_counter)
