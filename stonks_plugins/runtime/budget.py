"""How long the caller may still wait on plugin code: one deadline per request.

A request (``PageBudgetMiddleware``) opens a :class:`Scope` whose deadline is
``PLUGINS_PAGE_BUDGET`` seconds away; every wait on plugin code in that request - a load, a
config, a service call, a panel, a view, a health check - takes what is left of it, so the
request as a whole waits at most the budget however many plugins misbehave. Outside a
request (a Celery task, the CLI) there is no scope: a wait on a load or a health check gets
its own ``PLUGINS_CALL_TIMEOUT``, and broker calls run in the caller's thread
(:mod:`.inline`), bounded by the task's own time limit.

The scope also carries what the page must tell the user: which brokers were shown from an
earlier result (and how old it is) and which calls were started together (see
:mod:`.calls`). It lives in a ``contextvars`` variable, so it never leaks between requests
served by one thread.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from django.utils import timezone

from ..conf import plugin_settings


@dataclass(frozen=True)
class Stale:
    """A plugin's answer on this page is an earlier one: when it was taken, and why. Its
    time as the page shows it is formatted here, once: the template's date filters
    (localisation, format lookup) cost ~0.1 ms each, four per late broker."""

    plugin: str
    as_of: datetime
    reason: str

    @cached_property
    def local(self) -> datetime:
        return timezone.localtime(self.as_of)

    @property
    def iso(self) -> str:
        return self.local.isoformat()

    @property
    def full(self) -> str:
        return self.local.strftime("%Y-%m-%d %H:%M:%S")

    @property
    def hhmm(self) -> str:
        return self.local.strftime("%H:%M")


@dataclass
class Scope:
    deadline: float
    budget: float
    stale: dict[str, Stale] = field(default_factory=dict)
    pending: dict[Any, Any] = field(default_factory=dict)
    fanned: set[Any] = field(default_factory=set)

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "stonks_plugins_page_scope", default=None
)


current = _scope.get
"""The current request's scope (None outside a request); the call path reads it per call."""


def budget() -> float:
    return float(plugin_settings.PAGE_BUDGET)


def deadline() -> float:
    """The monotonic time by which the current caller must have its answer."""
    scope = _scope.get()
    if scope is not None:
        return scope.deadline
    return time.monotonic() + float(plugin_settings.CALL_TIMEOUT)


def limit() -> float:
    """The wait the caller is allowed in total (the budget in a request)."""
    scope = _scope.get()
    return scope.budget if scope is not None else float(plugin_settings.CALL_TIMEOUT)


@contextmanager
def page(seconds: float | None = None) -> Iterator[Scope]:
    """Open a scope: everything inside waits on plugin code at most ``seconds`` in total."""
    total = budget() if seconds is None else seconds
    scope = Scope(deadline=time.monotonic() + total, budget=total)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


@contextmanager
def inherit(scope: Scope | None) -> Iterator[None]:
    """Run with another thread's scope (a job started on a request's behalf)."""
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


def note_stale(plugin: str, as_of: datetime, reason: str) -> Stale:
    stale = Stale(plugin, as_of, reason)
    scope = _scope.get()
    if scope is not None:
        scope.stale[plugin] = stale
    return stale


def stale_notes() -> list[Stale]:
    scope = _scope.get()
    return sorted(scope.stale.values(), key=lambda s: s.plugin) if scope is not None else []
