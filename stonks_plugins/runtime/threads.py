"""Which threads run plugin code for someone else.

A lane's worker or a load attempt runs plugin code on behalf of a caller that may hold a
transaction (a request, a test): such a thread never reads or writes the database for the
runtime - its caller refreshes, reads configs and writes outcomes (see :mod:`.outbox`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_local = threading.local()


def in_plugin_thread() -> bool:
    return bool(getattr(_local, "plugin", False))


def plugin_thread(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` marked: the thread that runs it is a plugin thread."""

    def marked(*args: Any, **kwargs: Any) -> Any:
        _local.plugin = True
        return func(*args, **kwargs)

    return marked
