"""Pushed changes: a serving process hears of a committed change at once, not at its next
poll.

:mod:`stonks_plugins.propagation` announces each committed change with its generation (the
database counter): to this process's listeners, and on a Redis channel when ``REDIS_URL`` is
set. Here, a :class:`Receiver` per process turns each generation it has not heard yet into a
wake-up of the process's refresh, and skips the rest - a duplicate (heard in-process, then
from Redis), or a stale message overtaken by a newer one: the refresh the newer one caused
read every change committed before it. With Redis, a :class:`Subscriber` thread per process
feeds it from the channel, reconnecting with backoff (and jitter, so processes that lost
Redis together do not come back together).

The push is never needed for correctness: while the subscription is down, or when a message
is lost (pub/sub delivers at most once), the poll (``PLUGINS_REFRESH_INTERVAL``) finds the
change; after each resubscription the process looks once, for what was published while it
was not listening. What each deployment gets:

- with Redis (production): every process, on every host, within a Redis round trip of the
  commit, and within the poll interval when Redis pub/sub fails;
- the embedded default (no Redis): a change is live at once in the process that made it (the
  web process, where the admin or the API is used, and where tasks run eagerly); another
  process on the machine (``manage.py plugins ...`` beside ``runserver``) is seen at the next
  poll, one small query.

A forked child has no thread of its parent's and must not share its connection: it forgets
both (:func:`after_fork`) and starts its own with its background runtime.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from .. import propagation
from ..conf import plugin_settings

logger = logging.getLogger(__name__)

OnChange = Callable[[int | None], None]
"""``on_change(generation)``; None when changes may have been missed (a resubscription)."""
OnConfigs = Callable[[dict[str, int]], None]
"""``on_configs({plugin: version})``: config versions a change made live, told before
``on_change`` (the change's other effects are read by the refresh that wakes)."""

BACKOFF_BASE = 0.1  # seconds before the first reconnection attempt (then doubling)
LISTEN_TICK = 0.25  # seconds a wait for a message lasts: how soon a stop is noticed
HEALTH_CHECK = 10  # seconds of silence after which the subscription pings Redis


class Receiver:
    """Wakes the process once per new generation, whoever brings it."""

    def __init__(self, on_change: OnChange, on_configs: OnConfigs | None = None) -> None:
        self._on_change = on_change
        self._on_configs = on_configs
        self._lock = threading.Lock()
        self.generation = 0
        """The newest generation heard."""
        self.woken = 0
        self.skipped = 0

    def heard(self, generation: int | None, configs: dict[str, int] | None = None) -> bool:
        """Wake the process for ``generation`` unless it is not newer than one already
        heard; None always wakes it. Returns whether it did."""
        with self._lock:
            if generation is not None:
                if generation <= self.generation:
                    self.skipped += 1
                    return False
                self.generation = generation
            self.woken += 1
        if configs and self._on_configs is not None:
            self._on_configs(configs)
        self._on_change(generation)
        return True


class Subscriber:
    """A thread listening on the changes' Redis channel, for one process."""

    def __init__(
        self,
        url: str,
        channel: str,
        receiver: Receiver,
        *,
        backoff_max: float = 5.0,
        name: str = "",
    ) -> None:
        self.url = url
        self.channel = channel
        self.receiver = receiver
        self.backoff_max = max(float(backoff_max), BACKOFF_BASE)
        self.name = name or client_name()
        self.connected = threading.Event()
        """Set while subscribed: otherwise the process relies on its poll alone."""
        self.subscriptions = 0
        """How many times it subscribed: 1, plus one per reconnection."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._delay = BACKOFF_BASE
        self._outage = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="stonks-plugins-push", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        self.connected.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # redis.RedisError, OSError: whatever breaks the link
                was_up = self.connected.is_set()
                self.connected.clear()
                if not self._outage:
                    self._outage = True  # said once per outage (never the URL: a password)
                    logger.warning(
                        "plugin changes: Redis subscription %s (%s: %s); polling every %s s "
                        "and reconnecting",
                        "lost" if was_up else "unavailable",
                        type(exc).__name__,
                        exc,
                        plugin_settings.REFRESH_INTERVAL,
                    )
                self._stop.wait(self._delay * (1.0 + 0.5 * random.random()))
                self._delay = min(self._delay * 2, self.backoff_max)

    def _listen(self) -> None:
        import redis

        client = redis.Redis.from_url(
            self.url,
            socket_connect_timeout=2.0,
            socket_keepalive=True,
            health_check_interval=HEALTH_CHECK,
            client_name=self.name,
        )
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=LISTEN_TICK)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self._subscribed()
                elif message["type"] == "message":
                    self._message(message["data"])
        finally:
            pubsub.close()
            client.close()

    def _subscribed(self) -> None:
        self.subscriptions += 1
        self._delay = BACKOFF_BASE
        self.connected.set()
        missed = self.subscriptions > 1 or self._outage
        if self._outage:
            self._outage = False
            logger.info("plugin changes: Redis subscription up; changes are pushed again")
        if missed:
            # What was published while it was down is looked for once. (Not at a first
            # subscription that took at once: the runtime's first round reads everything
            # anyway, and a refresh now would hold the serving lock as a preloading parent
            # forks its workers.)
            self.receiver.heard(None)

    def _message(self, data: bytes | str) -> None:
        try:
            value, configs = propagation.decode(data)
        except (TypeError, ValueError):
            logger.warning("plugin changes: ignored a message that is not a generation")
            return
        self.receiver.heard(value, configs)


@dataclass
class _Push:
    pid: int
    receiver: Receiver
    subscriber: Subscriber | None


_current: _Push | None = None
_lock = threading.Lock()


def client_name() -> str:
    """How the subscription shows in Redis's ``CLIENT LIST``: host and pid."""
    return f"stonks-plugins-push:{socket.gethostname()}:{os.getpid()}"


def start(on_change: OnChange, on_configs: OnConfigs | None = None) -> Receiver:
    """Hear changes in this process from now on (idempotent in a process): committed here,
    and on Redis when ``REDIS_URL`` is set and ``PLUGINS_PUSH`` is on."""
    global _current
    with _lock:
        if _current is not None and _current.pid == os.getpid():
            return _current.receiver
        receiver = Receiver(on_change, on_configs)
        propagation.add_listener(receiver.heard)
        subscriber = None
        if propagation.pushing():
            subscriber = Subscriber(
                str(settings.REDIS_URL),
                propagation.channel(),
                receiver,
                backoff_max=float(plugin_settings.PUSH_BACKOFF_MAX),
            )
            subscriber.start()
        _current = _Push(os.getpid(), receiver, subscriber)
        return receiver


def stop() -> None:
    global _current
    with _lock:
        current, _current = _current, None
    if current is None:
        return
    propagation.remove_listener(current.receiver.heard)
    if current.subscriber is not None and current.pid == os.getpid():
        current.subscriber.stop()


def subscriber() -> Subscriber | None:
    """This process's subscriber, when it has one (diagnostics and tests)."""
    current = _current
    return current.subscriber if current is not None and current.pid == os.getpid() else None


def after_fork() -> None:
    """In a forked child: the parent's thread does not exist here, and its connection is
    the parent's - forget both (never close the socket: redis-py leaves a connection of
    another pid alone) and the listener that would wake the parent's runtime."""
    global _current, _lock
    _lock = threading.Lock()  # another thread of the parent may have held it at the fork
    current, _current = _current, None
    if current is not None:
        propagation.remove_listener(current.receiver.heard)


os.register_at_fork(after_in_child=after_fork)
