"""The environment a plugin's child starts with: what Python needs and what was declared,
never the project's own secrets."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

BASE_ENV = frozenset(
    {
        "PATH",  # finding declared programs
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",  # so $TMPDIR means the same directory in the host and the child
        "PYTHONHOME",  # an interpreter that needs these to find its standard library
        "PYTHONPLATLIBDIR",
        "LD_LIBRARY_PATH",
        "PYTHONUTF8",
        "PYTHONIOENCODING",
    }
)
"""What every plugin process gets, when the host has it: what Python and the C library need
to start and to behave like the host (encoding, locale, time zone). ``HOME`` is not among
them (``~`` still works: Python falls back to the password database)."""
BASE_ENV_PREFIXES = ("LC_",)
NEVER_PASSED = frozenset(
    {
        "SECRET_KEY",
        "SECRET_KEY_FALLBACKS",
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
    }
)
"""The project's own secrets and connection strings: never in a plugin process, even when
declared (nor any ``PLUGINS_*`` setting: :data:`NEVER_PASSED_PREFIXES`)."""
NEVER_PASSED_PREFIXES = ("PLUGINS_",)


def env_grants(permissions: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """(names, prefixes) the ``env:`` permissions pass through."""
    names: set[str] = set()
    prefixes: list[str] = []
    for text in permissions:
        kind, _, value = text.partition(":")
        if kind != "env":
            continue
        if value.endswith("*"):
            prefixes.append(value[:-1])
        else:
            names.add(value)
    return frozenset(names), tuple(prefixes)


def child_environment(permissions: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of a plugin process: :data:`BASE_ENV` and the declared variables,
    taken from ``environ``; never :data:`NEVER_PASSED`."""
    names, prefixes = env_grants(permissions)
    return {
        key: value
        for key, value in environ.items()
        if (
            key in BASE_ENV
            or key in names
            or key.startswith(BASE_ENV_PREFIXES)
            or (prefixes and key.startswith(prefixes))
        )
        and key not in NEVER_PASSED
        and not key.startswith(NEVER_PASSED_PREFIXES)
    }


def scrub_environment(permissions: Iterable[str], keep: Iterable[str] = ()) -> list[str]:
    """Drop from ``os.environ`` what :func:`child_environment` would not pass (and is not in
    ``keep``); returns the names dropped. Normally nothing: the host already launched the
    child with that environment."""
    allowed = set(child_environment(permissions, os.environ)) | set(keep)
    dropped = [key for key in os.environ if key not in allowed]
    for key in dropped:
        del os.environ[key]
    return dropped
