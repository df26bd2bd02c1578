"""A plugin's display name and description in the reader's language.

A manifest may carry ``plugin.translations``: ``{"nl": {"display_name": ..., "description":
...}, "es": {...}}``. The console and the API show the text for the active language (its full
code, ``pt-br``, then its base, ``pt``), each text falling back on its own to the manifest's
``display_name`` and ``description``, which are English. Plain functions over the stored
manifest (a dict): the caller names the language, so nothing here needs Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TEXT_KEYS = ("display_name", "description")


SOURCE_LANGUAGE = "en"
"""The language of a manifest's own ``display_name`` and ``description`` (as of every text of
the project); its translations are into other languages, so English needs no lookup."""


def language_candidates(language: str | None) -> list[str]:
    """The keys to try for ``language``: ``nl-BE`` -> ``["nl-be", "nl"]``; none for None or
    for English (the manifest's own texts)."""
    if not language:
        return []
    code = language.lower().replace("_", "-")
    base = code.split("-", 1)[0]
    if base == SOURCE_LANGUAGE:
        return []
    return [code] if base == code else [code, base]


def translations_of(manifest: Any) -> Mapping[str, Any]:
    """The manifest's ``plugin.translations``, or an empty mapping when it has none (or the
    stored manifest is not the shape the schema gives it)."""
    plugin = manifest.get("plugin") if isinstance(manifest, Mapping) else None
    found = plugin.get("translations") if isinstance(plugin, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def localized(
    translations: Mapping[str, Any] | None, language: str | None, **defaults: str
) -> dict[str, str]:
    """Each of ``defaults`` (``display_name=..., description=...``) in ``language`` when
    ``translations`` has a non-empty text for it, else the default."""
    out = dict(defaults)
    if not translations:
        return out
    for code in reversed(language_candidates(language)):  # the full code wins over its base
        entry = translations.get(code)
        if not isinstance(entry, Mapping):
            continue
        for key in defaults:
            text = entry.get(key)
            if isinstance(text, str) and text:
                out[key] = text
    return out
