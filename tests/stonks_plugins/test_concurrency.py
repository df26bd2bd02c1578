"""Two actors changing one plugin at once cannot corrupt its state: every transition is made
under a row lock, so the event log is one unbroken chain and the state matches the flag."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time

import pytest
from django.db import connection, connections, transaction

from stonks_plugins import store
from stonks_plugins.errors import IllegalTransition
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginEvent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks need PostgreSQL (CI runs this on it; SQLite serialises all writers)",
    ),
]


def test_concurrent_enable_disable_keeps_a_consistent_chain(plugin_dirs) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def actor(verb: str, who: str) -> None:
        try:
            barrier.wait()
            for _ in range(10):
                # Refused cleanly is fine; corrupting the state is not.
                with contextlib.suppress(IllegalTransition):
                    getattr(manager, verb)("healthy-fixture", actor=who)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=actor, args=(verb, f"{verb}-{i}"))
        for i in range(2)
        for verb in ("enable", "disable")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    chain = list(
        PluginEvent.objects.filter(plugin__name="healthy-fixture", kind="transition")
        .order_by("id")
        .values_list("from_state", "to_state")
    )
    for (_, previous_to), (next_from, _) in itertools.pairwise(chain):
        assert next_from == previous_to, chain
    row = Plugin.objects.get(name="healthy-fixture")
    assert chain[-1][1] == row.state
    assert row.state == ("active" if row.enabled else "disabled")


def _lock_waiters() -> int:
    """Other sessions of this database waiting for a lock (a row lock, here)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_locked_row_makes_a_second_writer_wait_so_no_update_is_lost(plugin_dirs) -> None:
    """``store.locked`` on its own, with no other lock around it: while one transaction
    holds a plugin's row, another that reads it through ``locked`` waits, then reads the
    first one's write. Without the row lock the second reads the old revision and writes
    it back + 1: one of two reloads is lost."""
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    start = Plugin.objects.get(name="healthy-fixture").revision
    first_holds, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def bump(hold: bool) -> None:
        try:
            with transaction.atomic():
                row = store.locked("healthy-fixture")
                row.revision += 1
                row.save(update_fields=["revision"])
                if hold:
                    first_holds.set()
                    release.wait(30)
        except BaseException as exc:
            errors.append(exc)
        finally:
            first_holds.set()
            connections.close_all()

    first = threading.Thread(target=bump, args=(True,))
    first.start()
    assert first_holds.wait(30)
    second = threading.Thread(target=bump, args=(False,))
    second.start()
    # The second writer blocks on the row (at its read with the lock, at its write
    # without); only then does the first commit.
    deadline = time.monotonic() + 30
    while _lock_waiters() == 0 and second.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    release.set()
    first.join(30)
    second.join(30)
    assert errors == []
    assert Plugin.objects.get(name="healthy-fixture").revision == start + 2
