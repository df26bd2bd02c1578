"""The last good answer of each plugin call, kept in this process's memory.

When a plugin misses the page budget or fails, the page shows what it answered last time,
marked with the time it was taken, rather than nothing. Answers are kept per plugin, per
operation and per arguments; a call that overran and finishes later still leaves its
answer here, so a slow broker is shown "as of" its last completed call. Nothing is written
anywhere: an answer older than ``PLUGINS_LAST_GOOD_MAX_AGE`` is not shown, and a plugin's
answers are forgotten when it is reloaded or its config changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..conf import plugin_settings


@dataclass(frozen=True)
class Answer:
    value: Any
    at: float  # time.time()

    @property
    def as_of(self) -> datetime:
        return datetime.fromtimestamp(self.at, tz=UTC)

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.at)


_answers: dict[tuple[str, Hashable], Answer] = {}
_epochs: dict[str, int] = {}
_everyone = 0  # bumped when every plugin is forgotten, those never seen yet included
_lock = threading.Lock()


def epoch(plugin: str) -> tuple[int, int]:
    """Taken when a call starts: an answer from before the plugin was last forgotten (a
    reload, a new config, the whole process's set reset) is not kept when the call ends."""
    return _everyone, _epochs.get(plugin, 0)


def keep(plugin: str, key: Hashable, value: Any, since: tuple[int, int] | None = None) -> None:
    with _lock:
        if since is not None and since != epoch(plugin):
            return
        _answers[(plugin, key)] = Answer(value, time.time())


def get(plugin: str, key: Hashable) -> Answer | None:
    answer = _answers.get((plugin, key))
    if answer is None or answer.age > float(plugin_settings.LAST_GOOD_MAX_AGE):
        return None
    return answer


def forget(plugin: str | None = None) -> None:
    global _everyone
    with _lock:
        if plugin is None:
            # A call of a plugin with no answer yet, running now, started before this too.
            _everyone += 1
        names = {k[0] for k in _answers} | set(_epochs) if plugin is None else {plugin}
        for name in names:
            _epochs[name] = _epochs.get(name, 0) + 1
        for k in [k for k in _answers if k[0] in names]:
            del _answers[k]


def args_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable | None:
    """A key for the arguments, or None when they are not hashable (not remembered)."""
    try:
        key = (args, tuple(sorted(kwargs.items())))
        hash(key)
    except TypeError:
        return None
    return key
