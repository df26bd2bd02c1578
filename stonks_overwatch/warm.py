"""What a web worker does before its first request, so that no user's page pays for it.

Each of these was paid by the first page of every worker (gunicorn starts several, and
restarts them): a user waited for it.
"""

from __future__ import annotations

from django.conf import settings
from django.template import engines
from django.template.loader import get_template
from django.urls import get_resolver
from django.utils import formats, timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import trans_real

PAGE_TEMPLATES = ("base.html", "home.html")


def warm_page_path() -> None:
    # The URL configuration: the API's schema views pull in DRF's and Django's test modules.
    get_resolver().url_patterns  # noqa: B018
    # The home page's templates, compiled once per process by the cached loader (~10 ms).
    for name in PAGE_TEMPLATES:
        get_template(name)
    # What a page imports on first use (5-7 ms): the templates' context processors, the
    # message, session and static files storage, the locale's number formats.
    engines["django"].engine.template_context_processors  # noqa: B018
    for path in (
        settings.MESSAGE_STORAGE,
        settings.SESSION_SERIALIZER,
        settings.SESSION_ENGINE + ".SessionStore",
        "django.contrib.staticfiles.storage.staticfiles_storage",
    ):
        import_string(path)
    formats.get_format("DECIMAL_SEPARATOR")
    # The time zone's rules (read from disk) and the language patterns, on first use: the
    # "as of" of a broker shown from an earlier answer, a browser's language.
    timezone.localtime()
    translation.get_supported_language_variant(settings.LANGUAGE_CODE)
    trans_real.parse_accept_lang_header("en-US,en;q=0.9")
