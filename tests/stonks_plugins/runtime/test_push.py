"""Pushed changes: a process hears of a change committed elsewhere at once, through Redis
pub/sub, and refreshes then - not at its next poll, which these tests put an hour away. A
stale or repeated generation wakes nobody; a lost subscription leaves the poll to find the
change and comes back by itself; a forked child listens on a connection of its own. On the
embedded default (no Redis) a change made in this process wakes this process.

"Elsewhere" is another process, on another host: it commits the change, writes the poll's
token, and publishes the generation with a Redis client of its own. These tests commit (the
runtime's thread has its own database connection, as in production) and need a real Redis
(``STONKS_TEST_REDIS_URL``; skipped when it is not reachable, except in CI) but the last.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator

import pytest
import redis
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from stonks_plugins import propagation
from stonks_plugins.manager import manager
from stonks_plugins.models import ConfigStatus, Generation, Plugin, PluginConfig
from stonks_plugins.registry import plugin_registry
from stonks_plugins.runtime import push
from stonks_plugins.runtime.background import background
from stonks_plugins.runtime.serving import serving
from tests.stonks_plugins.runtime.helpers import wait_until, while_locked

pytestmark = pytest.mark.django_db(transaction=True)

PLUGIN = "push-broker"


@pytest.fixture
def runtime(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.PLUGINS_WARMUP = True
    settings.PLUGINS_REFRESH_INTERVAL = 3600  # no poll within a test: only a push refreshes
    settings.PLUGINS_PUSH_BACKOFF_MAX = 0.4
    settings.CELERY_TASK_ALWAYS_EAGER = False  # no in-process beat in these tests
    yield
    background.stop()


def _elsewhere(**fields: object) -> int:
    """Another process commits a change to the plugin (or none, with no fields) and writes
    the poll's token; returns the generation it would publish."""
    if fields:
        while_locked(lambda: Plugin.objects.filter(name=PLUGIN).update(**fields))
    while_locked(
        lambda: Generation.objects.filter(key=propagation.KEY).update(value=F("value") + 1)
    )
    cache.set(propagation.CACHE_KEY, uuid.uuid4().hex, timeout=None)
    generation = propagation.generation()
    assert generation is not None
    return generation


def _publish(url: str, *generations: int) -> list[int]:
    """Publish as another host does; returns how many subscribers heard each message."""
    client = redis.Redis.from_url(url)
    try:
        return [int(client.publish(propagation.channel(), str(g))) for g in generations]
    finally:
        client.close()


def _serving_with_push(make_broker) -> push.Subscriber:  # type: ignore[no-untyped-def]
    make_broker(PLUGIN, "PUSH")
    manager.sync()
    assert background.start()
    subscriber = push.subscriber()
    assert subscriber is not None
    assert subscriber.connected.wait(10), "the process did not subscribe to Redis"
    assert wait_until(lambda: PLUGIN in serving.registered)
    return subscriber


def test_a_change_committed_elsewhere_is_pushed_here_at_once(
    redis_url, make_broker, runtime
) -> None:
    subscriber = _serving_with_push(make_broker)

    generation = _elsewhere(enabled=False, state="disabled")
    assert _publish(redis_url, generation) == [1]  # this process is the one listening
    assert wait_until(lambda: background.caught_up >= generation)
    # Refreshed for the pushed generation (the poll is an hour away): the plugin is gone.
    assert PLUGIN not in serving.registered
    assert subscriber.receiver.generation == generation

    generation = _elsewhere(enabled=True, state="active")
    _publish(redis_url, generation)
    assert wait_until(lambda: background.caught_up >= generation)
    assert PLUGIN in serving.registered


def test_a_stale_or_repeated_generation_wakes_nobody(redis_url, make_broker, runtime) -> None:
    subscriber = _serving_with_push(make_broker)
    heard = _elsewhere(enabled=False, state="disabled")
    _publish(redis_url, heard)
    assert wait_until(lambda: background.caught_up >= heard)
    assert PLUGIN not in serving.registered
    skipped = subscriber.receiver.skipped

    # The plugin is back on in the database, but the only messages are one already heard
    # and one older: nothing makes this process read it.
    _elsewhere(enabled=True, state="active")
    _publish(redis_url, heard, heard - 1)
    assert wait_until(lambda: subscriber.receiver.skipped == skipped + 2)
    assert background.caught_up == heard
    assert PLUGIN not in serving.registered

    # A newer generation does.
    newer = _elsewhere()
    _publish(redis_url, newer)
    assert wait_until(lambda: background.caught_up >= newer)
    assert PLUGIN in serving.registered


def test_a_pushed_change_is_noted_as_served_once_what_it_started_here_is_done(
    redis_url, make_broker, plugin_dirs, runtime
) -> None:
    """Each process notes since when it serves each pushed change (``background.served()``:
    what the propagation benchmark judges): a disable once the rows are read, an enable once
    the plugin it brought back is loaded too - not while its ``initialize()`` still runs -
    and a new config once the loaded plugin has taken it."""
    _serving_with_push(make_broker)
    before = time.monotonic()
    generation = _elsewhere(enabled=False, state="disabled")
    _publish(redis_url, generation)
    assert wait_until(lambda: background.served() and background.served()[-1][0] >= generation)
    noted, since = background.served()[-1]
    assert noted == generation and before <= since <= time.monotonic()
    assert PLUGIN not in serving.registered

    marker = plugin_dirs.path / PLUGIN / "slow-init"
    marker.write_text("1")  # the plugin's initialize() waits while this exists
    generation = _elsewhere(enabled=True, state="active")
    _publish(redis_url, generation)
    assert wait_until(lambda: background.caught_up >= generation)
    assert PLUGIN in serving.registered  # read and registered, still loading: not served
    time.sleep(0.2)
    assert plugin_registry.peek(PLUGIN) is None
    assert background.served()[-1][0] < generation
    released = time.monotonic()
    marker.unlink()
    assert wait_until(lambda: background.served()[-1][0] >= generation)
    noted, since = background.served()[-1]
    assert noted == generation and since >= released
    assert plugin_registry.peek(PLUGIN) is not None

    # A config made live elsewhere: served once the loaded plugin has taken it.
    config_marker = plugin_dirs.path / PLUGIN / "slow-config"
    config_marker.write_text("1")  # its on_config_change() waits while this exists
    PluginConfig.objects.create(
        plugin=Plugin.objects.get(name=PLUGIN),
        version=1,
        data={},
        is_active=True,
        status=ConfigStatus.ACTIVE,
        applied_at=timezone.now(),
    )
    generation = _elsewhere()
    assert propagation.publish(generation, {PLUGIN: 1}) == 1
    assert wait_until(lambda: background.caught_up >= generation)
    time.sleep(0.2)
    assert background.served()[-1][0] < generation  # still handing the config over
    released = time.monotonic()
    config_marker.unlink()
    assert wait_until(lambda: background.served()[-1][0] >= generation)
    noted, since = background.served()[-1]
    assert noted == generation and since >= released


def test_a_push_names_the_config_versions_it_made_live_and_no_config(redis_url) -> None:
    """A config made live elsewhere is named in its push (plugin and version, never the
    config: it holds secrets), before the wake-up, so a process hands it to its plugin
    before it reads anything else. A repeated message names nothing again; a bare
    generation (an older publisher) still wakes the process; garbage wakes nobody."""
    told: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
    receiver = push.Receiver(
        lambda generation: told.put(("change", generation)),
        lambda configs: told.put(("configs", configs)),
    )
    subscriber = push.Subscriber(redis_url, propagation.channel(), receiver, name="test-push")
    subscriber.start()
    try:
        assert subscriber.connected.wait(10), "the test could not subscribe to Redis"
        assert propagation.publish(41, {"broker-a": 7}) == 1
        assert told.get(timeout=5) == ("configs", {"broker-a": 7})
        assert told.get(timeout=5) == ("change", 41)
        client = redis.Redis.from_url(redis_url)
        try:
            client.publish(propagation.channel(), '{"g": 41, "config": {"broker-a": 7}}')
            client.publish(propagation.channel(), "not a change")
            client.publish(propagation.channel(), "42")
        finally:
            client.close()
        assert told.get(timeout=5) == ("change", 42)
        assert told.empty()
    finally:
        subscriber.stop()


class Relay:
    """A TCP relay to Redis that a test cuts (every connection dropped, new ones refused)
    and restores on the same port: Redis going away and coming back, for one client."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        for sock in [s for s in [listener] if s is not None] + sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            a.close()
            b.close()


def test_a_lost_subscription_falls_back_to_the_poll_and_resubscribes(
    redis_url, make_broker, runtime, settings
) -> None:
    parts = urllib.parse.urlsplit(redis_url)
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 6379)
    relay.up()
    # The push goes through the relay; the cache (the poll's token) straight to Redis.
    settings.REDIS_URL = parts._replace(netloc=f"127.0.0.1:{relay.port}").geturl()
    try:
        subscriber = _serving_with_push(make_broker)

        relay.down()
        assert wait_until(lambda: not subscriber.connected.is_set())
        settings.PLUGINS_REFRESH_INTERVAL = 0.1  # the poll, the push's fallback
        generation = _elsewhere(enabled=False, state="disabled")
        assert _publish(redis_url, generation) == [0]  # nobody heard it: the push is lost
        assert wait_until(lambda: PLUGIN not in serving.registered)  # the poll found it

        settings.PLUGINS_REFRESH_INTERVAL = 3600
        relay.up()
        assert wait_until(lambda: subscriber.connected.is_set(), timeout=15)
        assert subscriber.subscriptions == 2
        generation = _elsewhere(enabled=True, state="active")
        assert _publish(redis_url, generation) == [1]
        assert wait_until(lambda: background.caught_up >= generation)
        assert PLUGIN in serving.registered
    finally:
        background.stop()
        relay.down()


def test_a_forked_child_listens_on_a_connection_of_its_own(redis_url) -> None:
    heard_here: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    push.start(heard_here.put)
    try:
        parent = push.subscriber()
        assert parent is not None and parent.connected.wait(10)
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, then leave without running any of pytest
            code = 1
            try:
                inherited = push.subscriber()
                heard: queue.SimpleQueue[int | None] = queue.SimpleQueue()
                push.start(heard.put)
                own = push.subscriber()
                ok = inherited is None and own is not None and own.connected.wait(10)
                os.write(writer, f"{int(bool(ok))} {own.name if own else '-'}\n".encode())
                while (got := heard.get(timeout=10)) is None:
                    pass  # the look after subscribing
                os.write(writer, f"{got}\n".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(writer)
        with os.fdopen(reader) as lines:
            ready, name = lines.readline().split()
            assert ready == "1", "the child found its parent's subscriber, or none of its own"
            assert name != parent.name and name.endswith(f":{pid}")
            client = redis.Redis.from_url(redis_url)
            try:
                names = {c["name"] for c in client.client_list(_type="pubsub")}
            finally:
                client.close()
            assert {parent.name, name} <= names  # two connections, one per process
            assert _publish(redis_url, 424242) == [2]
            assert lines.readline().strip() == "424242"  # the child heard it on its own
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        while (got := heard_here.get(timeout=10)) is None:
            pass
        assert got == 424242  # and the parent's subscription still works
    finally:
        push.stop()


def test_embedded_default_a_change_made_here_wakes_this_process(
    make_broker, runtime, settings
) -> None:
    settings.REDIS_URL = ""
    make_broker(PLUGIN, "PUSH")
    manager.sync()
    assert background.start()
    assert push.subscriber() is None  # no Redis: nothing to subscribe to
    assert wait_until(lambda: PLUGIN in serving.registered)

    # Committed in this process: its listener is told at once.
    while_locked(lambda: manager.disable(PLUGIN))
    generation = propagation.generation()
    assert generation is not None
    assert wait_until(lambda: background.caught_up >= generation)
    assert PLUGIN not in serving.registered
