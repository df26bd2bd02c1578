"""The numbers plugins report about themselves (``get_metrics()``), asked at scrape time.

Plugin code, so it runs as everything else does: on the plugin's lane (:mod:`..runtime.lanes`:
a plugin that left an earlier caller waiting is not asked until it answers again, and a
caller never waits past its deadline), all plugins at once, and the scrape waits for all of
them together at most ``PLUGINS_PAGE_BUDGET`` seconds - the request's own budget when that
is shorter. Only plugins loaded in the scraping process are asked: a scrape never loads one.

It is not a service call: it neither counts in the plugin's calls nor feeds its circuit, and
a ``get_metrics`` that raises is logged, not recorded as an event (a scrape is a read; one
every 15 s would flood the event log). One that hangs is recorded once, like any overrun.

What comes back is filtered before anyone sees it: numbers only (``bool`` as 0/1, nested
dicts flattened to ``a.b``), at most :data:`MAX_VALUES` per plugin; a key that looks like a
secret (``password``, ``pin``, ``token``...) and a number equal to one of the plugin's secret
values are dropped, and a key quoting a secret is masked.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..base import BasePlugin
from ..conf import plugin_settings
from ..redaction import MASK, is_secret_key, plugin_secrets, scrub_text
from ..registry import LoadedPlugin, plugin_registry
from ..runtime import budget, lanes
from ..sandbox import SandboxError

logger = logging.getLogger(__name__)

OPERATION = "get_metrics"
MAX_VALUES = 100
"""Numbers kept per plugin: a plugin cannot blow up the scrape's size."""
MAX_DEPTH = 3
MAX_KEY = 120


@dataclass(frozen=True)
class Reported:
    name: str
    answered: bool
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Raised:
    """``get_metrics`` raised (kept apart from a value: the lane's callers see no error)."""

    kind: str


def _ask(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except (Exception, SystemExit) as exc:  # a plugin's sys.exit must not end the thread pool
        return _Raised(type(exc).__name__)


def _asker(loaded: LoadedPlugin) -> Callable[[], Any] | None:
    """What to call for this plugin's numbers, or None when it reports none."""
    host = loaded.host
    if host is not None:  # process-isolated: the child answers (and says its RSS, CPU...)
        return lambda: _ask(lambda: (host.metrics() or {}).get("plugin"))
    instance = loaded.instance
    if instance is None or type(instance).get_metrics is BasePlugin.get_metrics:
        return None  # services only, or the base class's empty answer: not worth a thread
    return lambda: _ask(instance.get_metrics)


def collect() -> list[Reported]:
    """Every loaded plugin's numbers that answer within the scrape's budget."""
    loaded = plugin_registry.loaded()
    wait = float(plugin_settings.PAGE_BUDGET)
    deadline = min(budget.deadline(), time.monotonic() + wait)
    limit = min(budget.limit(), wait)
    started: list[tuple[str, lanes.Call]] = []
    out: list[Reported] = []
    for name, plugin in sorted(loaded.items()):
        asker = _asker(plugin)
        if asker is None:
            continue
        lane = lanes.lane(name)
        if lane.overran:
            # It left a caller waiting and has not answered since: pages do not wait for it,
            # nor does a scrape (a call given up at once would only hold its lane).
            out.append(Reported(name, answered=False))
            continue
        try:
            # A scrape that comes while another one's call runs joins it (single flight).
            call = lane.joinable(OPERATION) or lane.start(
                OPERATION, asker, revalidate=False, key=OPERATION
            )
        except SandboxError as err:
            logger.info("/metrics: plugin %s not asked for its metrics: %s", name, err.message)
            out.append(Reported(name, answered=False))
            continue
        started.append((name, call))
    for name, call in started:
        try:
            raw = call.wait(deadline, limit)
        except SandboxError as err:
            logger.info("/metrics: plugin %s's metrics: %s", name, err.message)
            out.append(Reported(name, answered=False))
            continue
        if isinstance(raw, _Raised):
            logger.warning("/metrics: get_metrics() of plugin %s raised %s", name, raw.kind)
            out.append(Reported(name, answered=False))
            continue
        out.append(Reported(name, answered=True, values=numbers(raw, plugin_secrets(name))))
    return sorted(out, key=lambda r: r.name)


def numbers(raw: Any, secrets: tuple[str, ...] = ()) -> dict[str, float]:
    """The numeric values of a ``get_metrics()`` answer, keyed by their (flattened) names;
    everything secret-looking left out (see the module's docstring)."""
    out: dict[str, float] = {}
    secret_texts = set(secrets)

    def walk(prefix: str, value: Any, depth: int) -> None:
        if len(out) >= MAX_VALUES:
            return
        if isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                return
            for key, item in value.items():
                if is_secret_key(str(key)):
                    continue
                walk(f"{prefix}.{key}" if prefix else str(key), item, depth + 1)
            return
        number = _number(value)
        if number is None or not prefix or _is_secret(value, number, secret_texts):
            return
        out[_key(prefix, secrets)] = number

    walk("", raw, 0)
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float | Decimal):
        try:
            return float(value)
        except (OverflowError, ValueError):
            return None
    return None


def _is_secret(value: Any, number: float, secrets: set[str]) -> bool:
    if not secrets or isinstance(value, bool):
        return False
    texts = {str(value)}
    if math.isfinite(number) and number == int(number):
        texts.add(str(int(number)))
    return bool(texts & secrets)


def _key(key: str, secrets: tuple[str, ...]) -> str:
    key = scrub_text(key, secrets)[:MAX_KEY]
    return key if MASK not in key else key.replace(MASK, "masked")
