"""The language a request is served in.

An operator who sets ``LANGUAGE_CODE`` chooses the site's language: it is used whatever the
browser asks for (Django's ``LocaleMiddleware`` would prefer the browser's Accept-Language,
so a Dutch site would answer an English-speaking browser in English). Without it, or with
``LANGUAGE_FROM_BROWSER=1``, the browser's choice among ``LANGUAGES`` wins, as in Django.
A language chosen explicitly (the ``django_language`` cookie) wins either way.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class SiteLanguageMiddleware(LocaleMiddleware):
    def process_request(self, request: HttpRequest) -> None:
        if getattr(settings, "LANGUAGE_FROM_BROWSER", True):
            super().process_request(request)
            return
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        try:
            language = translation.get_supported_language_variant(chosen or "")
        except LookupError:
            language = settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
