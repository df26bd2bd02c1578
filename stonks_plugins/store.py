"""State changes on plugin rows, each one checked against the transition table and recorded
as an event. Callers hold the row locked (``locked``) inside a transaction, so two processes
acting on one plugin at once serialise instead of corrupting its state.

Text a plugin wrote - an exception message, a health message - is masked here, before it is
stored, with the plugin's actual secret values (and ``key=value`` secrets): what is in the
database is then safe for every reader (API, console, CLI). Health checks and config versions
are written elsewhere; their text is masked by the ``pre_save`` receivers below.

Inside a :func:`.writes.bulk` block the changes are written together when it ends
(a sync of 1,000 plugins is a few queries, not several per plugin); outside one, each is
written at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.db.models.signals import pre_save
from django.utils import timezone

from . import propagation, writes
from .conf import plugin_settings
from .discovery.candidate import Problem
from .errors import OPERATOR_CODES, PluginError, PluginNotFound, ReasonCode
from .lifecycle.signals import emit, plugin_state_changed
from .lifecycle.states import PluginState, check_transition
from .models import EventKind, HealthCheck, Plugin, PluginConfig, PluginEvent
from .redaction import plugin_secrets, redact, scrub_text

RETRYABLE_CODES = frozenset(
    {
        ReasonCode.INITIALIZE_FAILED,
        ReasonCode.TIMEOUT,
        ReasonCode.CIRCUIT_OPEN,
        ReasonCode.NOT_READY,
    }
)
"""Failures that may pass: each process keeps such a plugin registered and retries it with
backoff; the first success brings the row back to active. (``errors.OPERATOR_CODES`` are the
opposite: the plugin waits in error until an operator acts.)"""


def _isolated_rows() -> Q:
    """Rows of plugins that run in a child process: the rule of
    ``isolation.runs_isolated``, on stored rows (``Plugin.trust`` holds the last verdict)."""
    isolated = Q(manifest__isolation="process")
    if plugin_settings.ISOLATE_UNTRUSTED:
        isolated |= Q(trust__trusted=False) | ~Q(trust__has_key="trusted")
    return isolated


def may_recover() -> Q:
    """Rows in ``error`` for a reason that may pass: ``RETRYABLE_CODES``, and for a plugin in
    a child process also ``health_failed`` (its crashed child is restarted). Serving keeps
    such plugins registered, beat retries them, and :func:`recover` brings them back."""
    return Q(state=PluginState.ERROR.value) & (
        Q(error_code__in=[c.value for c in RETRYABLE_CODES])
        | (Q(error_code=ReasonCode.HEALTH_FAILED.value) & _isolated_rows())
    )


RUNTIME_CODES = frozenset(
    {
        ReasonCode.IMPORT_ERROR,
        ReasonCode.INITIALIZE_FAILED,
        ReasonCode.HEALTH_FAILED,
        ReasonCode.TIMEOUT,
        ReasonCode.CIRCUIT_OPEN,
        ReasonCode.CONFIG_INVALID,
        ReasonCode.NOT_READY,
        ReasonCode.AUTH_FAILED,
    }
)

_TO_ACTIVE: dict[PluginState, list[PluginState]] = {
    PluginState.DISCOVERED: [PluginState.LOADING, PluginState.LOADED, PluginState.ACTIVE],
    PluginState.LOADING: [PluginState.LOADED, PluginState.ACTIVE],
    PluginState.LOADED: [PluginState.ACTIVE],
    PluginState.ACTIVE: [],
    PluginState.ERROR: [
        PluginState.DISCOVERED,
        PluginState.LOADING,
        PluginState.LOADED,
        PluginState.ACTIVE,
    ],
    PluginState.DISABLED: [
        PluginState.DISCOVERED,
        PluginState.LOADING,
        PluginState.LOADED,
        PluginState.ACTIVE,
    ],
    PluginState.UNLOADING: [
        PluginState.DISCOVERED,
        PluginState.LOADING,
        PluginState.LOADED,
        PluginState.ACTIVE,
    ],
}
_TO_DISABLED: dict[PluginState, list[PluginState]] = {
    PluginState.ACTIVE: [PluginState.UNLOADING, PluginState.DISABLED],
    PluginState.LOADED: [PluginState.UNLOADING, PluginState.DISABLED],
    PluginState.DISABLED: [],
}


STATE_FIELDS = ("state", "state_changed_at", "error_code", "error_message", "error_details")
"""What a transition or a failure changes on a row."""


def save(row: Plugin, fields: Iterable[str]) -> None:
    """Write ``fields`` of ``row`` (and ``updated_at``): now, or when the :func:`bulk`
    block ends."""
    batch = writes.current()
    if batch is not None:
        batch.save(row, fields)
    else:
        row.save(update_fields=[*fields, "updated_at"])


def config_changed(name: str) -> None:
    """Call after storing a config of ``name`` inside a :func:`bulk` block."""
    batch = writes.current()
    if batch is not None:
        batch.config_changed(name)


def _write_state(plugin: Plugin) -> None:
    batch = writes.current()
    if batch is not None:
        batch.save(plugin, STATE_FIELDS)
    else:
        plugin.save()


def _add_event(event: PluginEvent) -> PluginEvent:
    batch = writes.current()
    if batch is not None:
        batch.events.append(event)
    else:
        event.save(force_insert=True)
    return event


def _bump() -> None:
    batch = writes.current()
    if batch is not None:
        batch.bump = True
    else:
        propagation.bump()


def _now() -> datetime:
    batch = writes.current()
    return batch.now if batch is not None else timezone.now()


_read_once: ContextVar[dict[str, tuple[str, ...]] | None] = ContextVar(
    "stonks_plugins_secrets_read_once", default=None
)


@contextmanager
def _secrets_read_once() -> Iterator[None]:
    """Within one write, each plugin's secrets are read once: a read is a query, and a
    failure's write masks its reason, its details and its event apart (four to six reads,
    ~20 ms of a serving process's CPU on a small VM, beside its pages)."""
    token = _read_once.set({}) if _read_once.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _read_once.reset(token)


def _secrets(name: str) -> tuple[str, ...]:
    batch = writes.current()
    if batch is not None:
        return batch.secrets_of(name)
    memo = _read_once.get()
    if memo is None:
        return plugin_secrets(name)
    found = memo.get(name)
    if found is None:
        found = memo[name] = plugin_secrets(name)
    return found


def mask_text(name: str, text: str) -> str:
    """``text`` without plugin ``name``'s secret values nor ``key=value`` secrets."""
    if not text:
        return text
    batch = writes.current()
    return batch.mask_text(name, text) if batch is not None else scrub_text(text, _secrets(name))


def mask_value(name: str, value: Any) -> Any:
    """A JSON-like ``value`` masked like :func:`mask_text`, and secret-looking keys too."""
    return redact(value, _secrets(name)) if value else value


def _masked(problem: Problem, name: str) -> Problem:
    return Problem(
        problem.code,
        mask_text(name, problem.message),
        tuple(mask_value(name, d) for d in problem.details),
    )


def _mask_health_check(sender: type, instance: HealthCheck, **kwargs: Any) -> None:
    name = instance.plugin.name
    with _secrets_read_once():
        instance.message = mask_text(name, instance.message)
        instance.details = mask_value(name, instance.details)


def _mask_config_message(sender: type, instance: PluginConfig, **kwargs: Any) -> None:
    if instance.message:  # why applying it failed: may quote the plugin's exception
        instance.message = mask_text(instance.plugin.name, instance.message)


pre_save.connect(_mask_health_check, sender=HealthCheck, dispatch_uid="stonks_plugins.mask_hc")
pre_save.connect(
    _mask_config_message, sender=PluginConfig, dispatch_uid="stonks_plugins.mask_config"
)


def locked(name: str) -> Plugin:
    """The row, locked until the surrounding transaction ends."""
    try:
        return Plugin.objects.select_for_update().get(name=name)
    except Plugin.DoesNotExist:
        raise PluginNotFound(name) from None


def record(
    plugin: Plugin,
    kind: EventKind,
    reason: str,
    actor: str = "system",
    details: dict[str, Any] | None = None,
) -> PluginEvent:
    return _add_event(
        PluginEvent(
            plugin=plugin,
            kind=kind,
            reason=mask_text(plugin.name, reason),
            actor=actor,
            details=mask_value(plugin.name, details or {}),
        )
    )


def transition(
    plugin: Plugin,
    target: PluginState,
    reason: str,
    actor: str = "system",
    problem: Problem | None = None,
) -> PluginEvent:
    check_transition(plugin.name, plugin.state, target)
    reason = mask_text(plugin.name, reason)
    problem = _masked(problem, plugin.name) if problem is not None else None
    previous = plugin.state
    plugin.state = target.value
    plugin.state_changed_at = _now()
    if target is PluginState.ERROR and problem is not None:
        plugin.error_code = problem.code.value
        plugin.error_message = problem.message
        plugin.error_details = list(problem.details)
    elif target in (PluginState.DISCOVERED, PluginState.ACTIVE, PluginState.DISABLED):
        plugin.error_code, plugin.error_message, plugin.error_details = "", "", []
    _write_state(plugin)
    _bump()
    details = problem.as_dict() if problem is not None else {}
    name = plugin.name
    code = plugin.error_code if target is PluginState.ERROR else ""
    transaction.on_commit(
        lambda: emit(
            plugin_state_changed,
            Plugin,
            name=name,
            from_state=previous,
            to_state=target.value,
            reason=reason,
            actor=actor,
            code=code,
        )
    )
    return _add_event(
        PluginEvent(
            plugin=plugin,
            kind=EventKind.TRANSITION,
            from_state=previous,
            to_state=target.value,
            reason=reason,
            actor=actor,
            details=details,
        )
    )


def walk(plugin: Plugin, path: list[PluginState], reason: str, actor: str = "system") -> None:
    for step in path:
        transition(plugin, step, reason, actor)


def activate(plugin: Plugin, reason: str, actor: str = "system") -> None:
    walk(plugin, _TO_ACTIVE[PluginState(plugin.state)], reason, actor)


def deactivate(plugin: Plugin, reason: str, actor: str = "system") -> None:
    walk(plugin, _TO_DISABLED.get(PluginState(plugin.state), [PluginState.DISABLED]), reason, actor)


def fail(plugin: Plugin, problem: Problem, actor: str = "system") -> bool:
    """Put the plugin in error with ``problem``; False when it already says exactly that."""
    problem = _masked(problem, plugin.name)
    if plugin.state == PluginState.ERROR:
        if plugin.error_code == problem.code and plugin.error_message == problem.message:
            return False
        served_differently = plugin.error_code != problem.code  # retryable or not
        plugin.error_code = problem.code.value
        plugin.error_message = problem.message
        plugin.error_details = list(problem.details)
        _write_state(plugin)
        if served_differently:
            # Only the code decides what a process serves: a new wording of the same
            # failure (a retry's, naming another pid) makes no process refresh.
            _bump()
        _add_event(
            PluginEvent(
                plugin=plugin,
                kind=EventKind.FAILURE,
                reason=problem.message,
                actor=actor,
                details=problem.as_dict(),
            )
        )
        return True
    transition(plugin, PluginState.ERROR, problem.message, actor, problem)
    return True


def mark_failed(error: PluginError, actor: str = "system") -> None:
    """A plugin failed while serving (import, initialise...): record it on its row."""
    with transaction.atomic(), _secrets_read_once():
        try:
            plugin = locked(error.plugin)
        except PluginNotFound:
            return
        if plugin.state in (PluginState.DISABLED, PluginState.UNLOADING):
            return
        details: tuple[dict[str, Any], ...] = ()
        as_dict = getattr(error, "as_dict", None)  # a SandboxError carries its traceback
        if callable(as_dict):
            info = dict(as_dict())
            for key in ("traceback", "stack"):
                info[key] = str(info.get(key, ""))[-8000:]
            details = (info,)
        fail(plugin, Problem(error.code, error.message, details), actor)


def retry_for_operator(plugin: Plugin, reason: str, actor: str = "system") -> bool:
    """An enabled plugin waiting in error for the operator (``errors.OPERATOR_CODES``: its
    credentials or config were refused) whose config the operator just changed: back to
    active, so every process loads it again with the new config (failing, it says so again).
    True when it did. The caller holds the row locked. The revision changes as on a reload:
    a process that still holds the failed load (and its backoff) starts afresh."""
    if plugin.enabled and plugin.state == PluginState.ERROR and plugin.error_code in OPERATOR_CODES:
        plugin.revision += 1
        save(plugin, ["revision"])
        activate(plugin, reason, actor)
        return True
    return False


def record_failure(name: str, reason: str, details: dict[str, Any]) -> None:
    """An event for a failure that does not (by itself) change the plugin's state."""
    plugin = Plugin.objects.filter(name=name).first()
    if plugin is not None:
        with _secrets_read_once():
            PluginEvent.objects.create(
                plugin=plugin,
                kind=EventKind.FAILURE,
                reason=mask_text(name, reason)[:2000],
                details=mask_value(name, details),
            )


def recover(name: str, reason: str) -> None:
    """A plugin in a retryable error worked again: back to active."""
    with transaction.atomic():
        try:
            plugin = locked(name)
        except PluginNotFound:
            return
        if plugin.enabled and Plugin.objects.filter(may_recover(), pk=plugin.pk).exists():
            activate(plugin, reason)
