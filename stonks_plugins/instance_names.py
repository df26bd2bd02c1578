"""How an instance of a plugin is named: ``NAME:LABEL``; the default instance is plain
``NAME``. The one place that spells, parses and checks these names.

An instance is a plugin row of its own (config, secrets, state, health, metrics, events), so
everything keyed by a plugin's name serves it unchanged; only where a name is mapped to what
discovery found does an instance need its base's candidate, renamed (:func:`candidate_for`).
Plugin names never hold ``:`` (the manifest's name pattern), so the separator cannot be
mistaken for part of a name.

Standard library and the candidate only: the loader (imported by a process-isolated
plugin's child, which has no Django) asks :func:`is_instance`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import StonksPluginsError

if TYPE_CHECKING:
    from .discovery.candidate import Candidate

SEPARATOR = ":"
LABEL_PATTERN = r"[a-z0-9][a-z0-9_-]{0,39}"
"""A slug: it goes in URLs, CLI arguments, environment variable names and module names."""
_LABEL = re.compile(LABEL_PATTERN)
MANIFEST_FIELD = "capabilities.multiple_instances"
"""Where a manifest says whether its plugin may be configured more than once."""


class InvalidLabel(StonksPluginsError, ValueError):
    """A label that is not a slug; the message says what a label may hold."""

    def __init__(self, plugin: str, label: str) -> None:
        super().__init__(
            f"plugin '{plugin}': {label!r} is not a valid instance label: use 1 to 40 "
            "lower-case letters, digits, '-' or '_', starting with a letter or digit "
            "(e.g. 'partner')"
        )
        self.plugin = plugin
        self.label = label


def check_label(plugin: str, label: str) -> str:
    """``label`` when it is a valid instance label, else :class:`InvalidLabel`."""
    if not isinstance(label, str) or _LABEL.fullmatch(label) is None:
        raise InvalidLabel(plugin, str(label))
    return label


def instance_name(base: str, label: str) -> str:
    """The row name of ``base``'s instance ``label`` (``base`` itself for the default)."""
    return f"{base}{SEPARATOR}{label}" if label else base


def split(name: str) -> tuple[str, str] | None:
    """``(base, label)`` for an instance's name, None for any other name."""
    base, sep, label = name.rpartition(SEPARATOR)
    if not sep or not base or _LABEL.fullmatch(label) is None:
        return None
    return base, label


def is_instance(name: str) -> bool:
    return SEPARATOR in name and split(name) is not None


def base_of(name: str) -> str:
    """The plugin an instance belongs to (a default instance's own name)."""
    parts = split(name)
    return parts[0] if parts is not None else name


def label_of(name: str) -> str:
    parts = split(name)
    return parts[1] if parts is not None else ""


def candidate_for(catalog: Mapping[str, Candidate], name: str) -> Candidate | None:
    """What discovery found for plugin row ``name``: its own candidate, or for an instance
    its base's, renamed (so its modules, lane, sandbox and broker carry its own name)."""
    cand = catalog.get(name)
    if cand is not None or SEPARATOR not in name:
        return cand
    parts = split(name)
    base = catalog.get(parts[0]) if parts is not None else None
    return base.evolve(name=name) if base is not None else None


def with_instances(catalog: Mapping[str, Candidate], names: Iterable[str]) -> dict[str, Candidate]:
    """``catalog`` plus a candidate for every instance among ``names`` (row names) whose
    base was found; an instance whose base was not found is left out, as its base is."""
    out = dict(catalog)
    for name in names:
        if name not in out and SEPARATOR in name:
            cand = candidate_for(catalog, name)
            if cand is not None:
                out[name] = cand
    return out


def relabel(broker: str, value: Any) -> Any:
    """What an instance's service returned, its records naming the instance as their
    broker. A plugin writes its own broker name into its records (``broker="degiro"``),
    the same for each of its instances; the pages tell the instances apart by this name.
    Anything but an instance's records is returned as it is."""
    if SEPARATOR not in broker or split(broker) is None:
        return value
    if isinstance(value, list):
        return [_relabel_one(broker, item) for item in value]
    return _relabel_one(broker, value)


def _relabel_one(broker: str, item: Any) -> Any:
    if not dataclasses.is_dataclass(item) or isinstance(item, type):
        return item
    changes: dict[str, Any] = {}
    if isinstance(getattr(item, "broker", None), str):
        changes["broker"] = broker
    if isinstance(getattr(item, "brokers", None), tuple):
        changes["brokers"] = (broker,)
    if not changes:
        return item
    try:
        return dataclasses.replace(item, **changes)
    except (TypeError, ValueError):  # a field the constructor does not take: as it is
        return item
