"""Two actors changing one plugin at once cannot corrupt its state: every transition is made
under a row lock, so the event log is one unbroken chain and the state matches the flag."""

from __future__ import annotations

import contextlib
import itertools
import threading

import pytest
from django.db import connection, connections

from stonks_plugins.errors import IllegalTransition
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks need PostgreSQL (CI runs this on it; SQLite serialises all writers)",
)
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
