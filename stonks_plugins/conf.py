"""Every ``PLUGINS_*`` setting and its default, in one table (DRF's ``api_settings`` is the
model).

The host's ``settings.py`` reads the environment (django-environ) into Django settings of
the same names; the engine reads them only through :data:`plugin_settings`, so a setting the
host does not define falls back to the default here. A value is read from Django's settings
once and kept (a page reads these a hundred times); Django's ``setting_changed`` signal,
which ``override_settings`` and pytest-django's ``settings`` fixture send, forgets it, as
DRF's ``api_settings`` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

DEFAULTS: Final[dict[str, Any]] = {
    # -- what is served -------------------------------------------------------------------
    "SAFE_MODE": False,  # start with no plugin code loaded; stored states are kept
    "ENABLE_NEW": True,  # newly discovered plugins start enabled
    "REGISTER_LEGACY": True,  # also register the legacy hard-coded brokers
    "REGISTRY_MODE": "alongside",  # legacy | alongside | plugins
    "LEGACY_AS_PLUGINS": True,  # list legacy brokers as plugins in 'alongside' mode
    "MODE_NOTE": "",  # internal: set by tests to word the mode's note
    "REFRESH_INTERVAL": 0.25,  # seconds between a process's checks for changes elsewhere
    "PUSH": True,  # with REDIS_URL, changes are also pushed (pub/sub); the poll stays
    "PUSH_BACKOFF_MAX": 5.0,  # longest wait, s, between two reconnections of the push
    # -- the serving runtime ------------------------------------------------------------
    "PAGE_BUDGET": 2.0,  # seconds a request may wait on plugin code, all phases together
    "CALL_TIMEOUT": 30.0,  # seconds a call outside a request (task, CLI) may wait
    "MAX_INFLIGHT": 4,  # calls of one plugin running at once in a process; more are refused
    "LAST_GOOD_MAX_AGE": 86400.0,  # seconds a last good result may be shown in its place
    "SLOW_CALL": 0.1,  # seconds: a plugin answering slower is served from its last answer
    "REVALIDATE_EVERY": 30.0,  # least seconds between background refreshes of a slow one
    "SYNC_LOAD_TIMEOUT": 15.0,  # seconds 'plugins sync' waits for new plugins to start
    "WARMUP": True,  # each process loads its plugins in the background at start
    "RETRY_JITTER": 0.2,  # fraction of a retry's backoff drawn at random
    # -- the boundary ---------------------------------------------------------------------
    "TIMEOUTS": {"import": 30.0, "initialize": 10.0, "health_check": 5.0, "shutdown": 5.0},
    "CIRCUIT_THRESHOLD": 5,
    "BACKOFF_BASE": 1.0,
    "BACKOFF_MAX": 300.0,
    "LOAD_RETRY_BASE": 5.0,  # first wait before a failed load is retried (then doubling)
    "PROCESS_LIMITS": {
        "memory_mb": 512,
        "cpu_seconds": 60,
        "call_timeout": 30.0,
        "start_timeout": 20.0,
    },
    # -- monitoring and retention (Celery beat, or the in-process scheduler) -----------------
    "HEALTH_FAILURE_THRESHOLD": 3,
    "HEALTH_HISTORY": 50,
    "HEALTH_INTERVAL": 60.0,  # seconds between background health checks of active plugins
    "RETRY_INTERVAL": 30.0,  # seconds between background retries of retryable errors
    "PRUNE_INTERVAL": 3600.0,  # seconds between two prunings of old rows
    "EVENT_RETENTION_DAYS": 90.0,
    "HEALTH_RETENTION_DAYS": 30.0,
    "METRICS_FLUSH_INTERVAL": 15.0,
    "METRICS_RETENTION_HOURS": 24.0,
    # -- secrets ------------------------------------------------------------------------------
    "SECRET_KEY": "",
    "SECRET_KEY_FALLBACKS": [],
    # -- trust: integrity, signatures, permissions, input limits ----------------------------
    "SIGNATURE_POLICY": "off",  # off | warn | enforce: whether unsigned plugins load
    "TRUSTED_KEYS": [],  # Ed25519 public keys (as 'plugins keygen' prints them)
    "ISOLATE_UNTRUSTED": False,  # run plugins that are not signed by a trusted key in a child
    "MAX_MANIFEST_BYTES": 262144,  # a larger plugin_manifest.json is manifest_unreadable
    "MAX_SCHEMA_BYTES": 262144,  # a larger config schema file is refused
    # -- operations: install, metrics, alerts, logs ------------------------------------------
    "INSTALL_ENABLED": False,  # allow 'plugins install/uninstall' and the console's upload
    "PIP_TIMEOUT": 300.0,  # seconds one pip run of 'plugins install/uninstall' may take
    "METRICS_TOKEN": "",  # bearer token for /metrics from other hosts (loopback needs none)
    "ALERT_EMAILS": [],  # addresses told when a plugin fails, turns unhealthy or recovers
    "ALERT_WEBHOOKS": [],  # URLs that get the same alert as a JSON POST
    "ALERT_RATE_LIMIT": 300.0,  # least seconds between two alerts of one kind for one plugin
    "ALERT_TIMEOUT": 5.0,  # seconds one alert delivery (SMTP or webhook) may take
    "ALERT_SITE_URL": "",  # the console's public address: alerts name it and link to it
    "LOG_RECORDS": 200,  # log records kept per plugin (and instance), newest first
    "LOG_LEVEL": "INFO",  # least level of a plugin's own log records that is kept
}


ENVIRONMENT_PARTS: Final[dict[str, dict[str, str]]] = {
    "TIMEOUTS": {
        "import": "PLUGINS_IMPORT_TIMEOUT",
        "initialize": "PLUGINS_INITIALIZE_TIMEOUT",
        "health_check": "PLUGINS_HEALTH_TIMEOUT",
        "shutdown": "PLUGINS_SHUTDOWN_TIMEOUT",
    },
    "PROCESS_LIMITS": {
        "memory_mb": "PLUGINS_PROCESS_MEMORY_MB",
        "cpu_seconds": "PLUGINS_PROCESS_CPU_SECONDS",
        "call_timeout": "PLUGINS_PROCESS_CALL_TIMEOUT",
        "start_timeout": "PLUGINS_PROCESS_START_TIMEOUT",
    },
}
"""The settings that are tables: the environment variable of each entry."""
_INTERNAL = frozenset({"MODE_NOTE"})


def from_environment(env: Any) -> dict[str, Any]:
    """Every ``PLUGINS_*`` Django setting, read from the environment variable of the same
    name (a django-environ ``Env``; typed as its default is), else the default above: the
    host's ``settings.py`` takes them from here rather than restating a default that could
    drift from this table."""
    found: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        if key in _INTERNAL:
            continue
        parts = ENVIRONMENT_PARTS.get(key)
        found[f"PLUGINS_{key}"] = (
            {part: _read(env, var, default[part]) for part, var in parts.items()}
            if parts is not None
            else _read(env, f"PLUGINS_{key}", default)
        )
    return found


def _read(env: Any, var: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):  # before int: a bool is an int
            return env.bool(var, default=default)
        if isinstance(default, int):
            return env.int(var, default=default)
        if isinstance(default, float):
            return env.float(var, default=default)
        if isinstance(default, list):
            return env.list(var, default=list(default))
        return env.str(var, default=default)
    except ValueError as exc:  # django-environ's own message names neither
        kind = "an integer" if isinstance(default, int) else "a number"
        raise ImproperlyConfigured(
            f"environment variable {var}={os.environ.get(var, '')!r} is not {kind} "
            f"(its default is {default!r})"
        ) from exc


class PluginSettings:
    """``plugin_settings.PAGE_BUDGET`` reads ``settings.PLUGINS_PAGE_BUDGET`` or the default."""

    def __getattr__(self, name: str) -> Any:
        # Called only for a name not kept yet: the value is kept in the instance's dict,
        # where the next read finds it without calling this.
        if name not in DEFAULTS:
            raise AttributeError(f"unknown plugin setting PLUGINS_{name}")
        value = getattr(settings, f"PLUGINS_{name}", DEFAULTS[name])
        self.__dict__[name] = value
        return value

    def forget(self) -> None:
        """Read every setting from Django's settings again at its next use."""
        self.__dict__.clear()

    @property
    def plugin_dirs(self) -> list[Path]:
        """``PLUGIN_DIRS`` (named without the prefix, as the environment variable is)."""
        return [Path(p) for p in getattr(settings, "PLUGIN_DIRS", ["plugins"])]

    def timeout(self, operation: str) -> float:
        """The boundary's limit for a lifecycle operation (the table's, unless overridden)."""
        merged = {**DEFAULTS["TIMEOUTS"], **(getattr(settings, "PLUGINS_TIMEOUTS", {}) or {})}
        return float(merged.get(operation) or DEFAULTS["CALL_TIMEOUT"])


plugin_settings = PluginSettings()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("PLUGINS_"):
        plugin_settings.forget()


setting_changed.connect(_setting_changed, dispatch_uid="stonks_plugins.conf")
