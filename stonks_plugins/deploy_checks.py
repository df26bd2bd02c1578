"""Deployment checks (``manage.py check --deploy``) of the keys that protect stored secrets.

The repository ships placeholder keys so that ``make run`` works on a fresh machine: a
``SECRET_KEY`` default in the settings, ``change-me`` values in ``.env.example``, and no
``PLUGINS_SECRET_KEY`` (the plugin secrets key is then derived from ``SECRET_KEY``). Anyone
with the repository can decrypt what those keys protect, so a deployment must replace them.
These are deploy checks, not start-up checks: the embedded default (``make run``, listening on
the loopback interface only) keeps running with them; ``check --deploy`` fails.

A placeholder is recognised by its marker (``insecure-`` at the start, ``change-me`` anywhere)
rather than by comparison with one value, so the settings default, the ``.env.example`` values
and Django's own ``django-insecure-`` keys are all caught.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .conf import plugin_settings

SECRET_KEY_HINT = (
    "Set SECRET_KEY in the environment (or .env) to a long random value, e.g. the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
)
FERNET_HINT = (
    "Set PLUGINS_SECRET_KEY in the environment (or .env) to a new Fernet key, e.g. the output "
    "of `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key()"
    ".decode())'`. To keep the secrets stored so far, list the key they were stored with in "
    "PLUGINS_SECRET_KEY_FALLBACKS, then run `manage.py plugins config rotate-key` and remove it."
)
DERIVED_HINT = (
    f"{FERNET_HINT} The key used so far (derived from SECRET_KEY) is printed by `python "
    "manage.py shell -c 'from stonks_plugins.config.secrets import derived_key; "
    "print(derived_key())'`."
)


def is_placeholder(value: str) -> bool:
    """A key that came from the repository (or nowhere)."""
    lowered = value.strip().lower()
    return (
        not lowered
        or lowered.startswith(("insecure-", "django-insecure-"))
        or "change-me" in lowered
    )


def check_deployment_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.DEBUG:
        return []  # a development site: Django's own deploy checks already say DEBUG is on
    errors: list[checks.CheckMessage] = []
    try:
        secret_key = str(settings.SECRET_KEY or "")
    except ImproperlyConfigured:  # Django refuses to read an empty one
        secret_key = ""
    if is_placeholder(secret_key):
        errors.append(
            checks.Error(
                "SECRET_KEY is the repository's placeholder (or empty) while DEBUG is off: "
                "sessions, tokens and, unless PLUGINS_SECRET_KEY is set, the plugins' stored "
                "secrets are protected by a key anyone with the repository knows.",
                hint=SECRET_KEY_HINT,
                id="stonks_plugins.E001",
            )
        )
    primary = str(plugin_settings.SECRET_KEY or "")
    if not primary.strip():
        errors.append(
            checks.Error(
                "PLUGINS_SECRET_KEY is not set while DEBUG is off: the plugins' stored secrets "
                "(broker passwords, API keys) are encrypted with a key derived from SECRET_KEY, "
                "so whoever learns SECRET_KEY can decrypt them.",
                hint=DERIVED_HINT,
                id="stonks_plugins.E002",
            )
        )
    elif is_placeholder(primary):
        errors.append(
            checks.Error(
                "PLUGINS_SECRET_KEY is the repository's placeholder while DEBUG is off.",
                hint=FERNET_HINT,
                id="stonks_plugins.E003",
            )
        )
    fallbacks = [str(k) for k in plugin_settings.SECRET_KEY_FALLBACKS or [] if str(k).strip()]
    for setting, value in [("PLUGINS_SECRET_KEY", primary)] + [
        (f"PLUGINS_SECRET_KEY_FALLBACKS[{i}]", k) for i, k in enumerate(fallbacks)
    ]:
        if value.strip() and not is_placeholder(value) and not _is_fernet_key(value):
            errors.append(
                checks.Error(
                    f"{setting} is not a valid Fernet key (32 url-safe base64-encoded bytes): "
                    "stored plugin secrets can be neither written nor read.",
                    hint=FERNET_HINT,
                    id="stonks_plugins.E004",
                )
            )
    return errors


def _is_fernet_key(value: str) -> bool:
    # cryptography (~4 ms) only when the checks run, not in ready() of every process.
    from cryptography.fernet import Fernet

    try:
        Fernet(value)
    except (ValueError, TypeError):
        return False
    return True


def register() -> None:
    """Called once from ``AppConfig.ready()``."""
    checks.register(check_deployment_keys, checks.Tags.security, deploy=True)
