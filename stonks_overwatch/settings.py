"""Settings, all from the environment (django-environ). With no environment at all the
project runs on SQLite with Celery tasks executed eagerly in-process: the embedded default."""

from __future__ import annotations

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The default is a placeholder for the embedded default (`make run`); `manage.py check
# --deploy` refuses it (stonks_plugins.E001: recognised by its "insecure-" marker).
SECRET_KEY = env.str("SECRET_KEY", default="insecure-dev-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "stonks_overwatch.apps.StonksOverwatchConfig",
    "stonks_plugins.apps.StonksPluginsConfig",
]

MIDDLEWARE = [
    # First: the whole request shares one page budget for waiting on plugin code.
    "stonks_plugins.runtime.middleware.PageBudgetMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The request's language (stonks_overwatch/locale.py): LANGUAGE_CODE when the operator
    # set it, else the browser's Accept-Language among LANGUAGES. After sessions, before
    # CommonMiddleware (Django's order).
    "stonks_overwatch.locale.SiteLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Request bodies: at most this many bytes are read (forms, and the API's JSON, which answers
# 413 beyond it); Django's default, 2.5 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)

ROOT_URLCONF = "stonks_overwatch.urls"
WSGI_APPLICATION = "stonks_overwatch.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "stonks_plugins.hosting.nav.plugin_navigation",
            ],
            # The host's and apps' templates are compiled once per process (Django's cached
            # loader; in DEBUG the autoreloader resets it when a template changes). View
            # plugins' templates (plugins/<name>/...) come from the plugin's package while it
            # is enabled; not cached, so disabling one takes effect at once.
            "loaders": [
                (
                    "django.template.loaders.cached.Loader",
                    [
                        "django.template.loaders.filesystem.Loader",
                        "django.template.loaders.app_directories.Loader",
                    ],
                ),
                "stonks_plugins.hosting.templates.Loader",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("TEST", {})
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web, CLI) share the file; wait for locks instead of failing.
    sqlite_options = DATABASES["default"].setdefault("OPTIONS", {})
    sqlite_options.setdefault("timeout", 20)
    # Write-ahead log: pages keep reading while a process's background runtime writes.
    # IMMEDIATE: a transaction takes the write lock when it starts, so two writers queue
    # instead of failing with "database is locked" when one upgrades from reading.
    sqlite_options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    sqlite_options.setdefault("transaction_mode", "IMMEDIATE")
elif DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Each process keeps its connection between requests and tasks (checked before it is
    # used again): a new one costs several ms per page and per task - the apply task of a
    # config change, on the path to every process, included. ``?conn_max_age=`` in
    # DATABASE_URL, or DATABASE_CONN_MAX_AGE (0: a connection per request), says otherwise.
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="stonks"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LOGIN_URL = "/admin/login/"
LOGIN_REDIRECT_URL = "/"

# The site's language (README "Languages"): pages, API messages and the CLI use it. Set in
# the environment, it is used whatever a browser asks for; unset (or with
# LANGUAGE_FROM_BROWSER=1) a browser's Accept-Language among LANGUAGES wins. Catalogs:
# stonks_plugins/locale/ (the console, API and CLI) and locale/ (the host's pages).
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en-us")
LANGUAGE_FROM_BROWSER = env.bool("LANGUAGE_FROM_BROWSER", default="LANGUAGE_CODE" not in os.environ)
LANGUAGES = [("en", "English"), ("nl", "Nederlands"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")

# -- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or "cache+memory://")
# No broker configured means no worker exists: run tasks in the caller's process.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A worker stops (and replaces) a task that runs longer: outside a request, broker calls run
# in the task's own thread (stonks_plugins/runtime/inline.py), so this is what bounds a
# plugin that hangs there. Above PLUGINS_PIP_TIMEOUT, the longest wait a task owns.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=900)

# -- Plugins --------------------------------------------------------------------------------
PLUGIN_DIRS = [
    Path(p) if Path(p).is_absolute() else BASE_DIR / p
    for p in env.list("PLUGIN_DIRS", default=["plugins"])
]
PLUGINS_SAFE_MODE = env.bool("PLUGINS_SAFE_MODE", default=False)
# Newly discovered plugins start enabled; set to false to review each one first.
PLUGINS_ENABLE_NEW = env.bool("PLUGINS_ENABLE_NEW", default=True)
# Legacy brokers from registry_setup.py are registered too ("alongside" the plugins).
PLUGINS_REGISTER_LEGACY = env.bool("PLUGINS_REGISTER_LEGACY", default=True)
# legacy: registry_setup.py brokers only; alongside: both (legacy brokers managed as plugins,
# source "legacy"); plugins: plugins only.
PLUGINS_REGISTRY_MODE = env.str("PLUGINS_REGISTRY_MODE", default="alongside")
# List the legacy brokers as plugins (enable, disable, health, config) in "alongside" mode.
PLUGINS_LEGACY_AS_PLUGINS = env.bool("PLUGINS_LEGACY_AS_PLUGINS", default=True)
# How often (seconds) a process checks whether plugins changed elsewhere (one cache GET).
PLUGINS_REFRESH_INTERVAL = env.float("PLUGINS_REFRESH_INTERVAL", default=0.25)
# With REDIS_URL, each committed change is also pushed (Redis pub/sub) to every process, which
# refreshes at once; the check above stays as the fallback. A lost subscription is retried
# with backoff, waiting at most PLUGINS_PUSH_BACKOFF_MAX seconds between two attempts.
PLUGINS_PUSH = env.bool("PLUGINS_PUSH", default=True)
PLUGINS_PUSH_BACKOFF_MAX = env.float("PLUGINS_PUSH_BACKOFF_MAX", default=5.0)
# Trust (see README "Trust"): PLUGINS_SIGNATURE_POLICY is off | warn | enforce (under
# enforce an unsigned or badly signed plugin is integrity_failed); PLUGINS_TRUSTED_KEYS lists
# the Ed25519 public keys 'plugins keygen' prints; PLUGINS_ISOLATE_UNTRUSTED runs every plugin
# not signed by a trusted key in a child process under its declared permissions. Manifests
# and config schema files larger than the limits (bytes) are refused.
PLUGINS_SIGNATURE_POLICY = env.str("PLUGINS_SIGNATURE_POLICY", default="off")
PLUGINS_TRUSTED_KEYS = env.list("PLUGINS_TRUSTED_KEYS", default=[])
PLUGINS_ISOLATE_UNTRUSTED = env.bool("PLUGINS_ISOLATE_UNTRUSTED", default=False)
PLUGINS_MAX_MANIFEST_BYTES = env.int("PLUGINS_MAX_MANIFEST_BYTES", default=262144)
PLUGINS_MAX_SCHEMA_BYTES = env.int("PLUGINS_MAX_SCHEMA_BYTES", default=262144)
# The isolation boundary: time limits (seconds) for calls into plugin code, the number of
# consecutive failures that opens a plugin's circuit, and the retry backoff.
PLUGINS_TIMEOUTS = {
    "import": env.float("PLUGINS_IMPORT_TIMEOUT", default=30.0),
    "initialize": env.float("PLUGINS_INITIALIZE_TIMEOUT", default=10.0),
    "health_check": env.float("PLUGINS_HEALTH_TIMEOUT", default=5.0),
    "shutdown": env.float("PLUGINS_SHUTDOWN_TIMEOUT", default=5.0),
}
PLUGINS_CIRCUIT_THRESHOLD = env.int("PLUGINS_CIRCUIT_THRESHOLD", default=5)
PLUGINS_BACKOFF_BASE = env.float("PLUGINS_BACKOFF_BASE", default=1.0)
PLUGINS_BACKOFF_MAX = env.float("PLUGINS_BACKOFF_MAX", default=300.0)
# First wait (seconds) before a plugin that failed to load is tried again, doubling each time.
PLUGINS_LOAD_RETRY_BASE = env.float("PLUGINS_LOAD_RETRY_BASE", default=5.0)
# Health: unhealthy this many times in a row puts a plugin in error (health_failed); this
# many results are kept per plugin.
PLUGINS_HEALTH_FAILURE_THRESHOLD = env.int("PLUGINS_HEALTH_FAILURE_THRESHOLD", default=3)
PLUGINS_HEALTH_HISTORY = env.int("PLUGINS_HEALTH_HISTORY", default=50)
# Metrics over time: each process adds its plugin call counts to a per-minute row at most
# every this many seconds; rows older than the retention (hours) are deleted.
PLUGINS_METRICS_FLUSH_INTERVAL = env.float("PLUGINS_METRICS_FLUSH_INTERVAL", default=15.0)
PLUGINS_METRICS_RETENTION_HOURS = env.float("PLUGINS_METRICS_RETENTION_HOURS", default=24.0)
# Seconds between background health checks of every active plugin (Celery beat); 0: off.
PLUGINS_HEALTH_INTERVAL = env.float("PLUGINS_HEALTH_INTERVAL", default=60.0)
# Seconds between background retries of plugins whose error may pass (timeout...); 0: off.
PLUGINS_RETRY_INTERVAL = env.float("PLUGINS_RETRY_INTERVAL", default=30.0)
# Seconds between two prunings of events, health results and metric samples; 0: off.
PLUGINS_PRUNE_INTERVAL = env.float("PLUGINS_PRUNE_INTERVAL", default=3600.0)
# Days plugin events are kept (the one explaining a plugin's current error always stays).
PLUGINS_EVENT_RETENTION_DAYS = env.float("PLUGINS_EVENT_RETENTION_DAYS", default=90.0)
# Days health check results are kept (on top of the per-plugin PLUGINS_HEALTH_HISTORY cap).
PLUGINS_HEALTH_RETENTION_DAYS = env.float("PLUGINS_HEALTH_RETENTION_DAYS", default=30.0)
# Plugins whose manifest asks for "isolation": "process" run in a child process with these
# limits: memory (MB), CPU seconds per call, and the time a call or the start may take.
PLUGINS_PROCESS_LIMITS = {
    "memory_mb": env.int("PLUGINS_PROCESS_MEMORY_MB", default=512),
    "cpu_seconds": env.int("PLUGINS_PROCESS_CPU_SECONDS", default=60),
    "call_timeout": env.float("PLUGINS_PROCESS_CALL_TIMEOUT", default=30.0),
    "start_timeout": env.float("PLUGINS_PROCESS_START_TIMEOUT", default=20.0),
}

# The serving runtime: a request waits on plugin code (loading, config, service calls,
# panels, views, health) at most PLUGINS_PAGE_BUDGET seconds in all; a broker that misses it
# is shown from its last good answer (at most PLUGINS_LAST_GOOD_MAX_AGE seconds old) or as
# unavailable. Outside a request a call may take PLUGINS_CALL_TIMEOUT. At most
# PLUGINS_MAX_INFLIGHT calls of one plugin run at once in a process; 'plugins sync' waits
# PLUGINS_SYNC_LOAD_TIMEOUT for new plugins to import and initialise. PLUGINS_WARMUP=0 stops
# web and worker processes from loading plugins in the background at start.
PLUGINS_PAGE_BUDGET = env.float("PLUGINS_PAGE_BUDGET", default=2.0)
PLUGINS_CALL_TIMEOUT = env.float("PLUGINS_CALL_TIMEOUT", default=30.0)
PLUGINS_MAX_INFLIGHT = env.int("PLUGINS_MAX_INFLIGHT", default=4)
PLUGINS_LAST_GOOD_MAX_AGE = env.float("PLUGINS_LAST_GOOD_MAX_AGE", default=86400.0)
# A plugin whose last call (answer or failure) took longer than PLUGINS_SLOW_CALL seconds, or
# missed the budget, is not waited for: pages show its last good answer (or it as
# unavailable) and it is asked again in the background at most every
# PLUGINS_REVALIDATE_EVERY seconds (or four times its last call's duration, if longer).
PLUGINS_SLOW_CALL = env.float("PLUGINS_SLOW_CALL", default=0.25)
PLUGINS_REVALIDATE_EVERY = env.float("PLUGINS_REVALIDATE_EVERY", default=30.0)
PLUGINS_SYNC_LOAD_TIMEOUT = env.float("PLUGINS_SYNC_LOAD_TIMEOUT", default=15.0)
PLUGINS_WARMUP = env.bool("PLUGINS_WARMUP", default=True)
PLUGINS_RETRY_JITTER = env.float("PLUGINS_RETRY_JITTER", default=0.2)

# Fernet key encrypting plugin config secrets at rest; older keys in the fallbacks still
# decrypt (rotation: see README). Unset in development: derived from SECRET_KEY, which
# `manage.py check --deploy` refuses (stonks_plugins.E002).
PLUGINS_SECRET_KEY = env.str("PLUGINS_SECRET_KEY", default="")
PLUGINS_SECRET_KEY_FALLBACKS = env.list("PLUGINS_SECRET_KEY_FALLBACKS", default=[])

# Operations (see README "Operating plugins"): 'plugins install/uninstall' and the console's
# wheel upload run pip in this environment only with PLUGINS_INSTALL_ENABLED=1 (and the
# stonks_plugins.install_plugin permission). /metrics answers loopback clients, and others
# that send "Authorization: Bearer PLUGINS_METRICS_TOKEN". Alerts go to PLUGINS_ALERT_EMAILS
# (through EMAIL_URL) and PLUGINS_ALERT_WEBHOOKS, at most one per plugin and kind every
# PLUGINS_ALERT_RATE_LIMIT seconds. Each plugin keeps its last PLUGINS_LOG_RECORDS records.
PLUGINS_INSTALL_ENABLED = env.bool("PLUGINS_INSTALL_ENABLED", default=False)
PLUGINS_PIP_TIMEOUT = env.float("PLUGINS_PIP_TIMEOUT", default=300.0)
PLUGINS_METRICS_TOKEN = env.str("PLUGINS_METRICS_TOKEN", default="")
PLUGINS_ALERT_EMAILS = env.list("PLUGINS_ALERT_EMAILS", default=[])
PLUGINS_ALERT_WEBHOOKS = env.list("PLUGINS_ALERT_WEBHOOKS", default=[])
PLUGINS_ALERT_RATE_LIMIT = env.float("PLUGINS_ALERT_RATE_LIMIT", default=300.0)
PLUGINS_ALERT_TIMEOUT = env.float("PLUGINS_ALERT_TIMEOUT", default=5.0)
# The console's public address (https://stonks.example.com): alerts name the site by it and
# link to the plugin's page; unset, they name this host and carry no link.
PLUGINS_ALERT_SITE_URL = env.str("PLUGINS_ALERT_SITE_URL", default="")
PLUGINS_LOG_RECORDS = env.int("PLUGINS_LOG_RECORDS", default=200)
PLUGINS_LOG_LEVEL = env.str("PLUGINS_LOG_LEVEL", default="INFO")
# Mail (alerts): EMAIL_URL such as smtp://user:pass@host:587/?tls=True; the console backend
# by default, which prints mail to the log.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="stonks-overwatch@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL


BROKER_CONFIGS: dict[str, dict[str, object]] = {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# -- REST API -------------------------------------------------------------------------------
# /api/v1/ (stonks_plugins.api): token or session login; reading needs the view permission on
# plugins, changing the change permission. Tokens: `manage.py drf_create_token USERNAME`.
INSTALLED_APPS += [
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # Swagger UI's JavaScript and CSS served from this site: the docs work offline and no
    # page of the console loads code from a CDN.
    "drf_spectacular_sidecar",
]
# Plugins that are Django apps ("x-django-app" in the manifest): installing one needs a
# restart and `manage.py migrate`; enabling, disabling and configuring it need neither.
# Listed after every host app, so a plugin app cannot take a host app's label.
try:
    from stonks_plugins.django_apps import plugin_apps

    INSTALLED_APPS += (
        []
        if PLUGINS_SAFE_MODE
        else plugin_apps(
            PLUGIN_DIRS,
            host_apps=INSTALLED_APPS,
            manifest_limit=PLUGINS_MAX_MANIFEST_BYTES,
            signature_policy=PLUGINS_SIGNATURE_POLICY,
            trusted_keys=PLUGINS_TRUSTED_KEYS,
        )
    )
except Exception:  # a broken plugin folder never breaks settings
    pass
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes an anonymous request a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "stonks_plugins.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stonks Overwatch plugins API",
    "DESCRIPTION": (
        "Plugins' state, actions, health, metrics and events. Authenticate with "
        "`Authorization: Token <key>` (or a session); reading needs the view permission on "
        "plugins, changing the change permission. Every error is "
        '`{"error": {"code", "message", "details"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "PluginStateEnum": "stonks_plugins.api.serializers.PLUGIN_STATES",
        "PluginTypeEnum": "stonks_plugins.models.PluginType",
        "PluginSourceEnum": "stonks_plugins.api.serializers.PLUGIN_SOURCES",
        "ReasonCodeEnum": "stonks_plugins.api.serializers.REASON_CODES",
        "EventKindEnum": "stonks_plugins.models.EventKind",
        "HealthStatusEnum": "stonks_plugins.api.serializers.HEALTH_STATUSES",
        "CircuitStateEnum": "stonks_plugins.api.serializers.CIRCUIT_STATES",
        "SystemStatusEnum": "stonks_plugins.api.serializers.SYSTEM_STATUSES",
        "CheckResultEnum": "stonks_plugins.api.serializers.CHECK_RESULTS",
        "ErrorLocationEnum": "stonks_plugins.api.serializers.ERROR_LOCATIONS",
        "LogLevelEnum": "stonks_plugins.api.log_views.LOG_LEVELS",
    },
}
