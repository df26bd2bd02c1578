"""What several benchmarks need from the machine's services: a throwaway PostgreSQL
database and Redis database (the e2e harness's, ``tests/e2e/conftest.py``), and one error for
a service that is not there (a benchmark then prints a notice and exits 0, or 2 with
``--check``). Imported by the benchmark scripts, whose folder is first on ``sys.path`` when
they run."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tests.e2e.conftest import claim_redis_db, postgres_database, release_redis_db


class Unavailable(Exception):
    """A service the benchmark needs is not reachable."""


@contextmanager
def temp_database(base: str) -> Iterator[str]:
    """A fresh database ``stonks_bench_<random>`` on the server of ``base`` (a postgres://
    URL), dropped afterwards; :class:`Unavailable` when the server cannot be reached. The
    name says "bench": a benchmark refuses to run its writes on any other database."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_database(base, "stonks_bench"))
        except Exception as exc:  # psycopg.OperationalError, mostly
            netloc = urllib.parse.urlsplit(base).netloc
            raise Unavailable(f"PostgreSQL at {netloc}: {exc}") from exc
        yield url


@contextmanager
def temp_redis_db(base: str) -> Iterator[str]:
    """An empty Redis database of the run's own on the server of ``base`` (claimed as the
    e2e tests claim theirs: concurrent runs never share the unprefixed Celery queue), flushed
    afterwards; :class:`Unavailable` when the server cannot be reached or has none free."""
    import redis

    try:
        url = claim_redis_db(base, uuid.uuid4().hex)
    except (redis.RedisError, RuntimeError) as exc:
        netloc = urllib.parse.urlsplit(base).netloc
        raise Unavailable(f"Redis at {netloc}: {exc}") from exc
    try:
        yield url
    finally:
        release_redis_db(url)
