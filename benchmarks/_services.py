"""What several benchmarks need from the machine's services: a throwaway PostgreSQL
database, and one error for a service that is not there (a benchmark then prints a notice
and exits 0, or 2 with ``--check``). Imported by the benchmark scripts, whose folder is
first on ``sys.path`` when they run."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tests.e2e.conftest import postgres_database


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
