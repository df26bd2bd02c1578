"""The suite itself: in CI it runs against the real services it claims (tests/conftest.py),
not against stand-ins."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import IN_CI, SUITE_CACHE_ENV, suite_cache_url


def test_the_suites_cache_is_the_real_redis_in_ci() -> None:
    url = suite_cache_url()
    if url is None:
        if IN_CI:
            pytest.fail(f"CI must run the suite with its cache on Redis: set {SUITE_CACHE_ENV}")
        pytest.skip(f"{SUITE_CACHE_ENV} is not set: the suite's cache is LocMem")
    import redis
    from django.core.cache import cache, caches
    from django.core.cache.backends.redis import RedisCache

    assert isinstance(caches["default"], RedisCache)
    key = f"probe-{uuid.uuid4().hex}"
    cache.set(key, "seen", timeout=30)
    try:
        # Written where this worker's database is, under the suite's prefix.
        assert redis.Redis.from_url(url).exists(f"suite:1:{key}") == 1
    finally:
        cache.delete(key)
