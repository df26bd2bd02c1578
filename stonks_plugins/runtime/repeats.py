"""Failures this process has already reported: a retry that fails as the attempt before it
did is not news, nor a call that fails as the call before it did (``reporting``: the channel
``call``, for a streak with no answer between).

Every web and worker process retries a failed load in the background, with backoff
(:mod:`.background`, Home Assistant's setup retry). Each retry used to report its failure
again: a warning in the log, an event with its traceback and a write that locks the
plugin's row to find it already says so - about 15 ms of CPU beside the pages, at every
retry of every process. As Home Assistant logs a retried setup, the first failure of a kind
is reported in full; its repeats are logged at debug level and written nowhere, until the
plugin loads, its code or config is new (:func:`forget`), or it fails another way (another
reason code, operation or message; a child's pid in the message does not count).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import PluginError

_PID = re.compile(r"\bpid \d+")
_reported: dict[tuple[str, str], tuple[str, str, str]] = {}
"""(channel, plugin) -> (operation, code, message) of the last failure reported there."""
_lock = threading.Lock()
_loading = threading.local()


def first_time(channel: str, err: PluginError) -> bool:
    """Note a failure reported on ``channel`` (a load's event or state, a call's); False when
    it repeats the last one reported there for its plugin. A failure that tripped a circuit
    is compared by its own code and message (``cause_code``, ``cause_message``): what the
    circuit adds to them changes at every trip."""
    key = (
        str(getattr(err, "operation", "")),
        str(getattr(err, "cause_code", err.code)),
        _PID.sub("pid #", getattr(err, "cause_message", err.message)),
    )
    with _lock:
        if _reported.get((channel, err.plugin)) == key:
            return False
        _reported[(channel, err.plugin)] = key
        return True


def forget(name: str | None = None) -> None:
    """The plugin loaded, or its code or config is new (None: every plugin's): its next
    failure is news again."""
    with _lock:
        if name is None:
            _reported.clear()
        else:
            for key in [k for k in _reported if k[1] == name]:
                del _reported[key]


@contextmanager
def loading(name: str) -> Iterator[None]:
    """This thread runs a load attempt of ``name`` (what the boundary reports meanwhile is
    a load failure, whatever operation of the plugin's it names)."""
    _loading.name = name
    try:
        yield
    finally:
        _loading.name = None


def during_load(name: str) -> bool:
    return getattr(_loading, "name", None) == name
