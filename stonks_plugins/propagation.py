"""How every process learns that plugins changed: a generation stamp.

Each committed change bumps a counter row in the database (the source of truth) and, after
commit, writes a fresh random token to the shared cache (Redis) when there is one. A process
compares the token (or, with no shared cache, the counter) with the one it last applied —
one cache GET or one tiny query, at most every ``PLUGINS_REFRESH_INTERVAL`` seconds — and
refreshes from the database when it differs. A token is written only after its commit, so a
process that sees a new token always reads the change; two tokens written out of order just
cause one extra refresh. Works across hosts: it goes through Redis or the database only.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.db.models import F

from .models import Generation

KEY = "plugins"
CACHE_KEY = "stonks_plugins:generation"


def shared_cache() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


def bump() -> None:
    """Call inside the transaction that changes plugins."""
    updated = Generation.objects.filter(key=KEY).update(value=F("value") + 1)
    if not updated:
        Generation.objects.get_or_create(key=KEY, defaults={"value": 1})
    if shared_cache():
        transaction.on_commit(lambda: cache.set(CACHE_KEY, uuid.uuid4().hex, timeout=None))


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
