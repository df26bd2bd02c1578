"""Reading a broker plugin's import report: every row of the files it read is understood,
skipped by a named rule, or reported with file, line and reason (DESIGN, "The legacy core").

The report lives in the plugin's running services - ``import_report`` on each service
instance the core's factory hands out, filled by the calls that read the files - so it is
read from those very instances, on the plugin's lane within the caller's deadline (in a
process-isolated plugin's child for an isolated one). It is the report of the data the pages
got last. A service that has read nothing yet in this process (the CLI's, a fresh worker) is
asked for its data first, as a page would ask it - the files are the same for every process,
so the report is too -, and so is every service when the caller wants the files as they are
now (``fresh``: a health check). The services' reports are merged into one
(:mod:`stonks_plugins.import_report`), with the plugin's secret values masked in row text.

:func:`with_import_report` is the one place where health hears of it: a broker that says it
is healthy while its import reports rows is recorded as ``degraded``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from django.utils import timezone

from stonks_overwatch.core.exceptions import BrokerRegistryError, BrokerUnavailableError
from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.registry import BrokerRegistry
from stonks_overwatch.core.service_types import ServiceType

from . import import_report as shape
from .config.system import secret_values
from .errors import PluginError, PluginNotFound, StonksPluginsError
from .health import Health, HealthStatus
from .interface_adapters import VERSIONS
from .legacy.bridge import DeferredService
from .lifecycle.states import PluginState
from .models import Plugin, PluginType
from .redaction import redact
from .registry import plugin_registry
from .runtime import budget, lanes
from .runtime.calls import BoundedService

logger = logging.getLogger(__name__)

HEALTH_REASONS = 3
"""Reported rows quoted in a degraded health message."""


class ImportReportUnavailable(StonksPluginsError):
    """The plugin's import report cannot be read now (the plugin is off, in error, or not
    served here); the message says why and what to do."""

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin '{plugin}': {message}")
        self.plugin = plugin


class NoImportReport(ImportReportUnavailable):
    """The plugin keeps no import report (not a broker, or its services have none)."""


def import_report(name: str, *, fresh: bool = False) -> dict[str, Any]:
    """The plugin's import report: its services' reports merged, with ``plugin`` and
    ``read_at``; with ``fresh``, of the files as they are now. Raises ``PluginNotFound``,
    :class:`NoImportReport`, :class:`ImportReportUnavailable`, or the plugin's failure (a
    ``PluginError``)."""
    try:
        plugin = Plugin.objects.get(name=name)
    except Plugin.DoesNotExist:
        raise PluginNotFound(name) from None
    return _report_of(plugin, fresh)


def _report_of(plugin: Plugin, fresh: bool) -> dict[str, Any]:
    name = plugin.name
    if plugin.type != PluginType.BROKER:
        raise NoImportReport(
            name, f"keeps no import report: it is a {plugin.type} plugin, not a broker"
        )
    if not plugin.enabled or plugin.state != PluginState.ACTIVE:
        why = f" ({plugin.error_code}: {plugin.error_message})" if plugin.error_code else ""
        raise ImportReportUnavailable(
            name,
            f"is {plugin.state if plugin.enabled else 'disabled'}{why}: its import report is "
            "read from its running services; enable it (or fix it) first",
        )
    services = _data_services(name)
    reports = [r for stype in services if (r := _service_report(name, stype, fresh))]
    if not reports:
        raise NoImportReport(name, "keeps no import report: none of its services has one")
    merged = shape.merge(reports)
    # The plugin's secrets out of row text (a row may quote its own config), and the
    # secret-looking pairs any text may hold.
    report: dict[str, Any] = redact(merged, secret_values(name))
    return {"plugin": name, "read_at": timezone.now(), **report}


def _data_services(name: str) -> list[ServiceType]:
    registry = BrokerRegistry()
    offered = [s for s in VERSIONS if registry.broker_supports_service(name, s)]
    if not offered and not registry.is_registered(name):
        raise ImportReportUnavailable(
            name, "is not served by this process (safe mode, or not synced yet)"
        )
    return offered


def _service_report(name: str, stype: ServiceType, fresh: bool) -> dict[str, Any] | None:
    try:
        front = BrokerFactory().create_service(name, stype)
    except BrokerRegistryError as exc:
        raise ImportReportUnavailable(name, str(exc)) from exc
    report = _read(name, front, stype)
    if report is None or not (fresh or shape.unread(report)):
        return report
    # Ask for the service's data as a consumer would (same lane, deadline and last good
    # answer): what the call reads fills the report.
    method = sorted(VERSIONS[stype].methods)[0]
    try:
        getattr(front, method)()
    except BrokerUnavailableError as exc:
        # What it read before failing may be all there is to see; else, why it failed.
        again = _read(name, front, stype)
        if again is not None and not shape.unread(again):
            return again
        if isinstance(exc, PluginError):
            raise
        raise ImportReportUnavailable(name, f"its {stype.value} service failed: {exc}") from exc
    return _read(name, front, stype)


def _read(name: str, front: Any, stype: ServiceType) -> dict[str, Any] | None:
    """The service's report as plain data, read on the plugin's lane."""
    service = front.wrapped if isinstance(front, BoundedService) else front
    if isinstance(service, DeferredService):
        service.prepare()  # its load is begun from this thread, which reads its config
    operation = f"{stype.value}.import_report"
    loaded = plugin_registry.peek(name)
    report: dict[str, Any] | None
    if loaded is not None and loaded.host is not None:
        # In a child: its forwarder bounds, counts and reports the call itself.
        call = lanes.lane(name).start(operation, _plain, service, revalidate=False)
        report = call.wait(budget.deadline(), budget.limit())
    else:
        box = plugin_registry.sandbox(name)
        report = lanes.run(name, box, operation, _plain, service, revalidate=False)
    if report is not None:
        problems = shape.check(report)
        if problems:
            raise ImportReportUnavailable(
                name,
                f"the import report of its {stype.value} service is not in the SDK's shape: "
                + "; ".join(problems[:5]),
            )
    return report


def _plain(service: Any) -> dict[str, Any] | None:
    return shape.plain(getattr(service, "import_report", None))


def with_import_report(plugin: Plugin, status: HealthStatus) -> HealthStatus:
    """``status`` as recorded for ``plugin``: a broker whose import reported rows is at best
    ``degraded``, with the count and the first reasons. A plugin with no report, or whose
    report cannot be read now, keeps its status."""
    if (
        status.status is Health.UNHEALTHY
        or plugin.type != PluginType.BROKER
        or plugin.state != PluginState.ACTIVE
        or plugin.name not in plugin_registry.known()
    ):
        return status
    try:
        report = _report_of(plugin, fresh=True)  # the caller's row: no second read of it
    except (ImportReportUnavailable, PluginError, BrokerUnavailableError) as exc:
        logger.debug("no import report for the health of %s: %s", plugin.name, exc)
        return status
    count = report["totals"]["reported"]
    if not count:
        return status
    rows = "row" if count == 1 else "rows"
    note = f"{count} {rows} reported by its import: {_first_reasons(report)}"
    details = {**status.details, "imports": report["totals"]}
    if status.status is Health.HEALTHY:
        return HealthStatus.degraded(note, **details)
    return replace(status, message=f"{status.message}; {note}", details=details)


def _first_reasons(report: dict[str, Any]) -> str:
    rows = [r for r in report["reported"] if r["outcome"] == "reported"][:HEALTH_REASONS]
    text = "; ".join(
        f"{r['file']}:{r['line'] if r['line'] is not None else '?'} {r['reason']}" for r in rows
    )
    more = report["totals"]["reported"] - len(rows)
    return text + (f" (and {more} more)" if more > 0 else "")
