"""A change committed by another process (here: written straight to the tables, bypassing
this process's manager) reaches this process's registry through the generation stamp."""

from __future__ import annotations

import pytest
from django.db.models import F

from stonks_overwatch.core.registry import BrokerRegistry
from stonks_plugins import propagation
from stonks_plugins.manager import manager
from stonks_plugins.models import Generation, Plugin

pytestmark = pytest.mark.django_db


def _other_process_sets(name: str, **fields: object) -> None:
    Plugin.objects.filter(name=name).update(**fields)
    Generation.objects.filter(key=propagation.KEY).update(value=F("value") + 1)


def test_disable_elsewhere_removes_broker_here(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("degiro-broker")
    manager.sync()
    assert "degiro-broker" in BrokerRegistry().get_registered_brokers()
    assert 'data-broker="degiro"' in admin_client_logged.get("/").content.decode()

    _other_process_sets("degiro-broker", enabled=False, state="disabled")
    page = admin_client_logged.get("/").content.decode()
    assert 'data-broker="degiro"' not in page
    assert 'data-broker="ibkr"' in page  # the legacy broker is untouched
    assert "degiro-broker" not in BrokerRegistry().get_registered_brokers()

    _other_process_sets("degiro-broker", enabled=True, state="active")
    assert 'data-broker="degiro"' in admin_client_logged.get("/").content.decode()


def test_unchanged_stamp_means_no_reload(plugin_dirs, django_assert_num_queries) -> None:
    plugin_dirs.add("degiro-broker")
    manager.sync()
    BrokerRegistry().get_registered_brokers()
    # Steady state: one cheap stamp read per registry read, no plugin query (the test runs
    # inside a transaction, so the read is wrapped in a savepoint: 3 statements).
    with django_assert_num_queries(3):
        BrokerRegistry().get_registered_brokers()


def test_stamp_is_none_before_migrate(monkeypatch) -> None:
    from django.db import DatabaseError

    def broken(*args: object, **kwargs: object) -> None:
        raise DatabaseError("no such table: stonks_plugins_generation")

    monkeypatch.setattr(Generation.objects, "filter", broken)
    assert propagation.read() is None
    # And the registry still answers with the legacy brokers.
    assert "ibkr" in BrokerRegistry().get_registered_brokers()


def test_shared_cache_token_propagates_on_real_redis(
    redis_url, plugin_dirs, admin_client_logged
) -> None:
    import uuid

    from django.core.cache import cache

    plugin_dirs.add("degiro-broker")
    manager.sync()
    assert 'data-broker="degiro"' in admin_client_logged.get("/").content.decode()
    before = cache.get(propagation.CACHE_KEY)
    assert before is not None

    # Another process commits a change and then writes a new token, as bump() does.
    Plugin.objects.filter(name="degiro-broker").update(enabled=False, state="disabled")
    cache.set(propagation.CACHE_KEY, uuid.uuid4().hex, timeout=None)
    assert 'data-broker="degiro"' not in admin_client_logged.get("/").content.decode()


def test_bump_writes_token_after_commit(redis_url, transactional_db) -> None:
    from django.db import transaction

    first = propagation.read()
    with transaction.atomic():
        propagation.bump()
        assert propagation.read() == first  # not visible before the commit
    assert propagation.read() != first
