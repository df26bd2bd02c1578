"""Health checks: run each plugin's ``health_check`` through the isolation boundary, keep a
bounded history, and put a plugin that is unhealthy N times in a row in ``health_failed`` - or
at once in ``auth_failed``/``config_invalid`` when its check raised ``PluginAuthFailed`` or
``PluginConfigRejected``. A broker whose import reported rows is recorded as ``degraded`` at best
(:func:`stonks_plugins.imports.with_import_report`), whatever its own check says."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import transaction

from stonks_overwatch.core.exceptions import BrokerUnavailableError

from . import store
from .conf import plugin_settings
from .discovery.candidate import Problem
from .errors import OPERATOR_CODES, PluginError, ReasonCode
from .health import Health, HealthStatus
from .imports import with_import_report
from .lifecycle.states import PluginState
from .models import HealthCheck, Plugin
from .registry import plugin_registry
from .runtime import budget, lanes, loads
from .sandbox import SandboxError


@dataclass(frozen=True)
class CheckOutcome:
    plugin: str
    status: HealthStatus
    duration_ms: float


def _probe(plugin: Plugin) -> HealthStatus:
    if plugin.state != PluginState.ACTIVE:
        reason = f": {plugin.error_code}: {plugin.error_message}" if plugin.error_code else ""
        return HealthStatus.unhealthy(f"plugin is {plugin.state}{reason}")
    if plugin.name not in plugin_registry.known():
        # Not a broker served here (or not registered yet): nothing to import in this process.
        return HealthStatus.healthy("active; no code loaded in this process")
    try:
        # Within the caller's budget; a failed load records itself (runtime.loads).
        loaded = loads.acquire(plugin.name)
    except PluginError as err:
        return HealthStatus.unhealthy(f"{err.code.value}: {err.message}", code=err.code.value)
    if loaded.host is not None:
        try:
            running = lanes.lane(plugin.name).start(
                "health_check", loaded.host.health_check, revalidate=False
            )
            status: HealthStatus = running.wait(budget.deadline(), budget.limit())
            return status
        except BrokerUnavailableError as exc:
            return HealthStatus.unhealthy(str(exc), code=getattr(exc, "code", ""))
    if loaded.instance is None:
        return HealthStatus.healthy("loaded; services only, no health_check of its own")
    sandbox = plugin_registry.sandbox(plugin.name)
    try:
        # On the plugin's lane: a request waits at most its budget, a stuck plugin's checks
        # are refused at once instead of piling up threads.
        result = lanes.run(
            plugin.name, sandbox, "health_check", loaded.instance.health_check, revalidate=False
        )
    except SandboxError as err:
        return HealthStatus.unhealthy(str(err), code=err.code.value)
    if not isinstance(result, HealthStatus):
        return HealthStatus.unhealthy(
            f"health_check() returned {type(result).__name__}, expected HealthStatus"
        )
    return result


def run_check(plugin: Plugin, actor: str = "system") -> CheckOutcome:
    start = time.perf_counter()
    status = with_import_report(plugin, _probe(plugin))
    duration_ms = (time.perf_counter() - start) * 1000
    threshold = int(plugin_settings.HEALTH_FAILURE_THRESHOLD)
    keep = int(plugin_settings.HEALTH_HISTORY)
    with transaction.atomic():
        row = store.locked(plugin.name)
        HealthCheck.objects.create(
            plugin=row,
            status=status.status.value,
            message=status.message[:2000],
            details=_jsonable(status.details),
            duration_ms=duration_ms,
            actor=actor,
        )
        stale = HealthCheck.objects.filter(plugin=row).order_by("-created_at", "-id")[keep:]
        HealthCheck.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
        code = status.details.get("code") if status.status is Health.UNHEALTHY else None
        if code in OPERATOR_CODES and row.state == PluginState.ACTIVE:
            # The plugin said its credentials or config were refused: no threshold, waiting
            # for the operator is all there is to do.
            store.fail(row, Problem(ReasonCode(str(code)), status.message), actor)
        elif status.status is Health.UNHEALTHY and row.state == PluginState.ACTIVE:
            row.consecutive_unhealthy += 1
            row.save(update_fields=["consecutive_unhealthy", "updated_at"])
            if row.consecutive_unhealthy >= threshold:
                store.fail(
                    row,
                    Problem(
                        ReasonCode.HEALTH_FAILED,
                        f"unhealthy {row.consecutive_unhealthy} times in a row: {status.message}",
                    ),
                    actor,
                )
        elif status.status is not Health.UNHEALTHY and row.consecutive_unhealthy:
            row.consecutive_unhealthy = 0
            row.save(update_fields=["consecutive_unhealthy", "updated_at"])
    return CheckOutcome(plugin.name, status, duration_ms)


def _jsonable(details: dict[str, object]) -> dict[str, object]:
    import json

    try:
        json.dumps(details)
        return details
    except (TypeError, ValueError):
        return {k: repr(v) for k, v in details.items()}
