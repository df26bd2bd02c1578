"""The whole system's health, for a load balancer and for monitoring.

The rule (also in the OpenAPI description of ``/api/v1/health/``):

- **503 ``unavailable``** when the database or the cache does not answer: this process cannot
  serve, so a load balancer should take it out of rotation.
- **200 ``degraded``** when the database and cache answer but some *enabled* plugins are in
  ``error``: the site still serves everything else — one bad plugin must never take the site
  down, and every worker would fail the same check, so a 503 here would empty the pool. The
  failing plugins' names are listed so monitoring can alert on them.
- **200 ``ok``** otherwise.

It needs no login and says nothing beyond counts, names and ok/error per dependency: no
messages, no hosts, no tracebacks.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q

from ..lifecycle.states import PluginState
from ..manager import manager

logger = logging.getLogger(__name__)

MAX_NAMES = 100
_PROBE_KEY = "stonks_plugins:api:health-probe"


@dataclass
class SystemHealth:
    database: bool
    cache: bool
    plugins: dict[str, Any] | None

    @property
    def status(self) -> str:
        if not (self.database and self.cache):
            return "unavailable"
        if self.plugins and self.plugins["failing_count"]:
            return "degraded"
        return "ok"

    @property
    def http_status(self) -> int:
        return 503 if self.status == "unavailable" else 200

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checks": {
                "database": "ok" if self.database else "error",
                "cache": "ok" if self.cache else "error",
            },
            "plugins": self.plugins,
        }


def _plugins() -> dict[str, Any]:
    """Two queries: the counts, and the names of enabled plugins in error."""
    plugins = manager.get_available_plugins()
    failing = Q(enabled=True, state=PluginState.ERROR.value)
    counted = plugins.aggregate(  # aliases must not shadow field names
        n_total=Count("pk"),
        n_enabled=Count("pk", filter=Q(enabled=True)),
        n_active=Count("pk", filter=Q(state=PluginState.ACTIVE.value)),
        n_failing=Count("pk", filter=failing),
    )
    counts = {
        "total": counted["n_total"],
        "enabled": counted["n_enabled"],
        "active": counted["n_active"],
        "failing_count": counted["n_failing"],
    }
    names: list[str] = []
    if counts["failing_count"]:
        query = plugins.filter(failing).order_by("name").values_list("name", flat=True)
        names = list(query[:MAX_NAMES])
    return {**counts, "failing": names}


def _cache_answers() -> bool:
    token = uuid.uuid4().hex
    cache.set(_PROBE_KEY, token, timeout=10)
    return bool(cache.get(_PROBE_KEY) == token)


def system_health() -> SystemHealth:
    try:
        with transaction.atomic():  # a savepoint: a failed query spoils no outer transaction
            plugins: dict[str, Any] | None = _plugins()
        database = True
    except Exception as exc:  # any driver error means "this process cannot serve"
        logger.warning("health: the database does not answer: %s", exc)
        plugins, database = None, False
    try:
        cache_ok = _cache_answers()
    except Exception as exc:
        logger.warning("health: the cache does not answer: %s", exc)
        cache_ok = False
    return SystemHealth(database, cache_ok, plugins)
