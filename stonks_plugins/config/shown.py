"""What a page may show of a plugin's text and stored configs: never one of its secrets.

Text the engine or a plugin wrote (error messages, events, health results, apply messages, log
records) is masked when it is stored; a page scrubs it again with the plugin's secret values
before showing it, in case one slipped through in a new form (a value stored before its field
became secret, a plugin echoing one). Those values come from
:func:`~stonks_plugins.config.system.secret_values`, which is cached per config version: a
read costs one small query and decrypts nothing unless a config of the plugin was saved or
applied since the last one. A page's sections share one :class:`Scrubber`. Stored config
versions are shown masked: nothing is decrypted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models import Plugin, PluginConfig
from ..redaction import redact, scrub_text
from . import versions
from .system import secret_values


@dataclass(frozen=True)
class Scrubber:
    """Scrubs text and JSON of secret-looking pairs, of every secret this process knows and
    of ``secrets`` (one plugin's values, longest first so that one holding another is masked
    whole)."""

    secrets: tuple[str, ...] = ()

    def text(self, value: Any) -> str:
        return scrub_text(str(value or ""), self.secrets)

    def json(self, value: Any) -> Any:
        return redact(value, self.secrets)


ANY_PLUGIN = Scrubber()
"""For text of no plugin in particular (a list of many): what this process knows."""


def scrubber(name: str) -> Scrubber:
    """The scrubber of plugin ``name``'s texts. Never raises (see ``secret_values``)."""
    return Scrubber(tuple(sorted(secret_values(name), key=len, reverse=True)))


def scrubber_for(plugin: Plugin) -> Scrubber:
    """The scrubber of ``plugin``'s texts, made once per row instance: the sections and
    read-only fields of one page share it (one query), instead of reading the secret values
    again for each."""
    cached = plugin.__dict__.get("_shown_scrubber")
    if cached is None:
        cached = plugin.__dict__["_shown_scrubber"] = scrubber(plugin.name)
    return cached


def masked_data(cfg: PluginConfig) -> dict[str, Any]:
    """A stored config version's data as anyone may see it: its secrets masked (not
    decrypted). Raises the plugin's error when its schema cannot be read."""
    return versions.view(cfg.plugin, cfg, versions.schema_of(cfg.plugin)).data
