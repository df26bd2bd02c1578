"""How every process learns that plugins changed: a generation, pushed and polled.

Each committed change bumps a counter row in the database (the source of truth). Once the
transaction commits - never before, so a process told of a change always reads it - one
announcement per transaction:

- writes a fresh random token to the shared cache (Redis), when there is one: the *poll*.
  A process compares the token (or, with no shared cache, the counter) with the one it last
  applied - one cache GET or one tiny query, at most every ``PLUGINS_REFRESH_INTERVAL``
  seconds - and refreshes from the database when it differs;
- publishes the committed generation on a Redis channel (``PLUGINS_PUSH``): the *push*. Each
  serving process's subscriber (:mod:`.runtime.push`) wakes its refresh at once, and skips a
  generation it has already heard (a duplicate, or a stale message overtaken by a newer one);
- tells this process's own listeners (the push's receiver), with or without Redis: on the
  embedded default a change made in a process is live in that process at once.

The push only makes a change arrive sooner: a lost message, a subscriber that is down, or a
publish that fails leaves the poll to find the change. Everything goes through Redis or the
database, so it works across hosts; the in-process listeners add nothing another host needs.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.db.models import F

from .conf import plugin_settings
from .models import Generation

if TYPE_CHECKING:
    import redis

logger = logging.getLogger(__name__)

KEY = "plugins"
CACHE_KEY = "stonks_plugins:generation"
CHANNEL_KEY = "stonks_plugins:changes"

Listener = Callable[[int], object]
_listeners: list[Listener] = []
_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def shared_cache() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


def pushing() -> bool:
    """Changes are published on Redis (and processes subscribe to them)."""
    return shared_cache() and bool(plugin_settings.PUSH)


def bump(config: tuple[str, int] | None = None) -> None:
    """Call inside the transaction that changes plugins; ``config``: (plugin, version) when
    the change makes that config version live, which the push then carries (never the
    config itself: it holds secrets), so a process hands it to the plugin before it reads
    anything else."""
    updated = Generation.objects.filter(key=KEY).update(value=F("value") + 1)
    if not updated:
        Generation.objects.get_or_create(key=KEY, defaults={"value": 1})
    connection = transaction.get_connection()
    # One announcement per transaction, however many bumps it makes (a walk through several
    # states bumps at each step); a callback registered in a savepoint that is rolled back
    # is dropped with it, and the next bump registers one again.
    announcement = next(
        (entry[1] for entry in connection.run_on_commit if isinstance(entry[1], _Announcement)),
        None,
    )
    if announcement is None:
        announcement = _Announcement()
        transaction.on_commit(announcement)
    if config is not None:
        name, version = config
        announcement.configs[name] = max(version, announcement.configs.get(name, 0))


def read() -> str | None:
    """The current stamp, or None when the database is not ready (not migrated yet)."""
    if shared_cache():
        token = cache.get(CACHE_KEY)
        if token is None:
            token = uuid.uuid4().hex
            if not cache.add(CACHE_KEY, token, timeout=None):
                token = cache.get(CACHE_KEY)
        return str(token)
    try:
        query = Generation.objects.filter(key=KEY).values_list("value", flat=True)
        if transaction.get_connection().in_atomic_block:
            # Inside a transaction a failed query (table not migrated) would poison it.
            with transaction.atomic():
                value = query.first()
        else:
            value = query.first()
    except DatabaseError:
        return None
    return f"db:{value or 0}"


def generation() -> int | None:
    """The committed generation (the database counter), or None when it cannot be read."""
    try:
        value = Generation.objects.filter(key=KEY).values_list("value", flat=True).first()
    except DatabaseError:
        return None
    return int(value or 0)


def add_listener(listener: Listener) -> None:
    """``listener(generation)`` after each change this process commits (idempotent)."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def channel() -> str:
    """The Redis channel of this deployment. Pub/sub ignores Redis's database numbers, so
    the name carries the cache's key prefix and the database, or two deployments (or test
    runs) sharing a Redis server would hear each other's generations."""
    db = redis_client().connection_pool.connection_kwargs.get("db", 0)
    return f"{cache.make_key(CHANNEL_KEY)}:db{db}"


def redis_client() -> redis.Redis:
    """A client of ``REDIS_URL`` for this process (redis-py reopens its pool after a fork)."""
    import redis

    url = str(settings.REDIS_URL)
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            # Short timeouts: a publish happens after a commit, in the committing request.
            client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
            _clients[url] = client
    return client


def publish(value: int, configs: dict[str, int] | None = None) -> int:
    """Publish a generation, with the config versions it made live if any (see
    :func:`decode`); returns how many subscribers heard it."""
    message = json.dumps({"g": value, "config": configs}) if configs else str(value)
    return int(redis_client().publish(channel(), message))


def decode(data: bytes | str) -> tuple[int, dict[str, int]]:
    """A message's generation and the config versions it made live: a bare generation
    (``"12"``), or ``{"g": 12, "config": {"plugin": 5}}``. Raises ValueError otherwise."""
    text = data.decode() if isinstance(data, bytes) else str(data)
    if not text.startswith("{"):
        return int(text), {}
    try:
        body = json.loads(text)
        value = body["g"]
        configs = body.get("config") or {}
        if not isinstance(value, int) or not isinstance(configs, dict):
            raise TypeError
        return value, {str(k): int(v) for k, v in configs.items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a plugin change message: {text[:80]!r}") from exc


class _Announcement:
    """The on-commit callback of one transaction that changed plugins."""

    def __init__(self) -> None:
        self.configs: dict[str, int] = {}

    def __call__(self) -> None:
        _announce(self.configs)


def _announce(configs: dict[str, int] | None = None) -> None:
    """After the commit: the poll's token, then the push. A failure here must not turn a
    committed change into an error for its caller: it is logged, and the poll covers it.
    (A config noted by a bump in a savepoint later rolled back may be announced: the
    process that hears it reads the live version, whatever the note says.)"""
    if shared_cache():
        try:
            cache.set(CACHE_KEY, uuid.uuid4().hex, timeout=None)
        except Exception:
            logger.exception("could not write the plugins' propagation token to the cache")
    if not (_listeners or pushing()):
        return
    # The committed counter, read after the commit: ours, or a later one (also committed).
    value = generation()
    if value is None:
        return
    for listener in list(_listeners):
        try:
            listener(value)
        except Exception:
            logger.exception("a listener of plugin changes failed")
    if pushing():
        try:
            publish(value, configs)
        except Exception as exc:
            logger.warning(
                "could not publish plugin change %s on Redis (%s); "
                "processes will see it at their next poll",
                value,
                exc,
            )


def _after_fork_in_child() -> None:
    global _clients_lock
    _clients_lock = threading.Lock()  # a parent's thread may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)
