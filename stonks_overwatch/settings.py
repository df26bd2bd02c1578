"""Settings, all from the environment (django-environ). With no environment at all the
project runs on SQLite with Celery tasks executed eagerly in-process: the embedded default."""

from __future__ import annotations

import os
from pathlib import Path

import environ

from stonks_plugins.conf import from_environment

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
if DATABASES["default"]["ENGINE"].endswith(("postgresql", "sqlite3")):
    # Each thread keeps its connection between requests, tasks and the plugin runtime's
    # rounds (checked before it is used again): a new one costs several ms per page and per
    # task on PostgreSQL - the apply task of a config change, on the path to every process,
    # included - and on SQLite 1-2 ms of Python each time (its functions registered, its
    # pragmas run), four times a second in every process's runtime beside the pages.
    # ``?conn_max_age=`` in DATABASE_URL, or DATABASE_CONN_MAX_AGE (0: a connection per
    # request), says otherwise.
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
# Every PLUGINS_* setting: the environment variable of the same name, else its default in the
# one table of them, stonks_plugins/conf.py (each described in the README's settings table).
# Tables take one variable per entry (PLUGINS_IMPORT_TIMEOUT, PLUGINS_PROCESS_MEMORY_MB...).
# PLUGINS_SECRET_KEY is unset in development: derived from SECRET_KEY, which
# `manage.py check --deploy` refuses (stonks_plugins.E002).
_plugins = from_environment(env)
vars().update(_plugins)
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
        if _plugins["PLUGINS_SAFE_MODE"]
        else plugin_apps(
            PLUGIN_DIRS,
            host_apps=INSTALLED_APPS,
            manifest_limit=_plugins["PLUGINS_MAX_MANIFEST_BYTES"],
            signature_policy=_plugins["PLUGINS_SIGNATURE_POLICY"],
            trusted_keys=_plugins["PLUGINS_TRUSTED_KEYS"],
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
