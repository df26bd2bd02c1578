"""Typed, immutable manifest model, decoded by msgspec straight from the file's bytes.

The published JSON Schema (``schemas/plugin_manifest.schema.json``) is the contract. The
Structs below mirror it: the same required keys, string patterns, lengths, enums and closed
objects (``forbid_unknown_fields`` where the schema has ``additionalProperties: false``), and
``__post_init__`` checks ``uniqueItems`` and the shape of ``dependencies``. So one
``msgspec.json.Decoder(ManifestDocument)`` pass parses *and* checks a manifest, at about the
cost of a plain parse.

msgspec is only a fast *accept* path. Whatever it rejects goes to jsonschema, which decides
and reports every error with its JSON path (see ``validation.py``). The one thing the
Structs cannot express, the ``x-`` keys the schema allows (``patternProperties``) in the
top level, ``plugin`` and ``capabilities``, is handled by ``strip_extensions`` before
conversion. The tests check that each constraint here matches the schema, and that msgspec
never accepts a manifest jsonschema rejects.

Patterns: JSON Schema regexes are ECMA-262, where ``$`` matches only at the very end of the
string. Python's ``$`` also matches before a final newline, so the patterns are given to
msgspec (and to the slow path's jsonschema) with a trailing ``$`` written as ``\\Z``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, cast

import msgspec
from msgspec import Meta

from stonks_overwatch.core.service_types import ServiceType

# The schema's "definitions", as published (with ECMA-262 "$").
VERSION_PATTERN = r"^[0-9]+(\.[0-9]+)*([-.+]?[A-Za-z0-9.+-]*)?$"
DOTTED_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
_IDENTS = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
OBJECT_REF_PATTERN = f"^{_IDENTS}:{_IDENTS}$"
PLUGIN_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
HOMEPAGE_PATTERN = r"^https?://"
SHA256_PATTERN = r"^[0-9a-f]{64}$"


def ecma_pattern(pattern: str) -> str:
    """``pattern`` for Python's ``re.search`` with ECMA-262 meaning: a final unescaped ``$``
    (end of input only) becomes ``\\Z``."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + r"\Z"
    return pattern


VersionStr = Annotated[
    str, Meta(min_length=1, max_length=64, pattern=ecma_pattern(VERSION_PATTERN))
]
Dotted = Annotated[str, Meta(pattern=ecma_pattern(DOTTED_PATTERN))]
ObjectRef = Annotated[str, Meta(pattern=ecma_pattern(OBJECT_REF_PATTERN))]
PluginName = Annotated[str, Meta(pattern=ecma_pattern(PLUGIN_NAME_PATTERN))]
Homepage = Annotated[str, Meta(pattern=ecma_pattern(HOMEPAGE_PATTERN))]
Sha256 = Annotated[str, Meta(pattern=ecma_pattern(SHA256_PATTERN))]
NonEmptyStr = Annotated[str, Meta(min_length=1)]
StringList = tuple[NonEmptyStr, ...]
"""The schema's ``string_list``; ``uniqueItems`` is checked by ``ManifestDocument``."""
PluginType = Literal["broker", "aggregator", "view", "middleware"]
Isolation = Literal["in_process", "process"]

# Optional keys: absent means None, but a present key must hold its type (the schema allows
# no JSON null). msgspec reads the runtime alias and fills in the default for an absent key;
# type checkers read the static one, which admits that default.
if TYPE_CHECKING:
    OptVersion: TypeAlias = str | None
    OptDotted: TypeAlias = str | None
    OptObjectRef: TypeAlias = str | None
    OptConfigSchema: TypeAlias = dict[str, Any] | str | None
else:
    OptVersion = VersionStr
    OptDotted = Dotted
    OptObjectRef = ObjectRef
    OptConfigSchema = dict[str, Any] | str


class _Section(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False
):
    """Base of the manifest's objects: immutable, closed, and untracked by the garbage
    collector (they hold only strings, tuples and dicts of strings: no reference cycles)."""


class PluginInfo(_Section, frozen=True):
    name: PluginName
    version: VersionStr
    type: PluginType
    display_name: Annotated[str, Meta(max_length=200)] = ""
    description: Annotated[str, Meta(max_length=2000)] = ""
    author: Annotated[str, Meta(max_length=200)] = ""
    license: Annotated[str, Meta(max_length=100)] = ""
    homepage: Homepage = ""


class ApiSpec(_Section, frozen=True):
    min_version: VersionStr
    max_version: OptVersion = None
    interfaces: StringList = ()


class Capabilities(_Section, frozen=True):
    services: tuple[ServiceType, ...] = ()
    features: StringList = ()
    supported_markets: StringList = ()
    supported_currencies: StringList = ()


class ConfigurationSpec(_Section, frozen=True):
    config_class: OptDotted = None
    required_credentials: StringList = ()
    optional_settings: StringList = ()
    schema: OptConfigSchema = None
    """JSON Schema of the plugin's config, inline (an object) or a path relative to the
    manifest."""


class EntryPoints(_Section, frozen=True):
    main: OptObjectRef = None
    config: OptObjectRef = None


_NO_CAPABILITIES = Capabilities()
_NO_CONFIGURATION = ConfigurationSpec()
_NO_ENTRY_POINTS = EntryPoints()


class ManifestDocument(_Section, frozen=True):
    """A whole ``plugin_manifest.json`` as the schema describes it (the decoding target).
    ``dependencies`` still holds ``plugins``; :class:`PluginManifest` splits it off."""

    plugin: PluginInfo
    api: ApiSpec
    dependencies: dict[str, str | dict[PluginName, str]] = {}
    capabilities: Capabilities = _NO_CAPABILITIES
    configuration: ConfigurationSpec = _NO_CONFIGURATION
    services: dict[ServiceType, Dotted] = {}
    entry_points: EntryPoints = _NO_ENTRY_POINTS
    isolation: Isolation = "in_process"
    permissions: StringList = ()
    integrity: dict[str, Sha256] = {}

    def __post_init__(self) -> None:
        # What the Meta constraints cannot say; a ValueError here is a msgspec ValidationError.
        # One hook for the whole document: a call per section would cost more than the checks.
        api, caps, conf = self.api, self.capabilities, self.configuration
        for items in (
            api.interfaces,
            caps.services,
            caps.features,
            caps.supported_markets,
            caps.supported_currencies,
            conf.required_credentials,
            conf.optional_settings,
            self.permissions,
        ):
            if len(items) > 1 and len(set(items)) != len(items):
                raise ValueError("array items must be unique (uniqueItems)")
        # "plugins" maps plugin names to specifiers; every other key is a specifier string.
        for key, value in self.dependencies.items():
            if (key == "plugins") is not (type(value) is dict):
                raise ValueError(f"dependencies.{key}: wrong type")


class PluginManifest(msgspec.Struct, frozen=True, omit_defaults=True, dict=True):
    """A valid manifest. ``raw`` is its dict form, parsed from the file's bytes on first
    access (discovery does not pay for it) or the dict it was built from."""

    plugin: PluginInfo
    api: ApiSpec
    dependencies: dict[str, str] = {}
    """Requirement specifiers by distribution name (and ``python``); no ``plugins``."""
    plugin_dependencies: dict[str, str] = {}
    capabilities: Capabilities = _NO_CAPABILITIES
    configuration: ConfigurationSpec = _NO_CONFIGURATION
    services: dict[ServiceType, str] = {}
    entry_points: EntryPoints = _NO_ENTRY_POINTS
    isolation: str = "in_process"
    permissions: tuple[str, ...] = ()
    integrity: dict[str, str] = {}

    @property
    def name(self) -> str:
        return self.plugin.name

    @property
    def version(self) -> str:
        return self.plugin.version

    @property
    def type(self) -> str:
        return self.plugin.type

    @property
    def display_name(self) -> str:
        return self.plugin.display_name or self.plugin.name

    @property
    def raw(self) -> dict[str, Any]:
        """The manifest as parsed JSON (``x-`` keys included), computed once."""
        state = self.__dict__
        raw = state.get("_raw")
        if raw is None:
            source = state.get("_source")
            if source is not None:
                raw = json.loads(source.decode("utf-8-sig"))
            else:  # built field by field: the nearest dict form
                raw = msgspec.json.decode(msgspec.json.encode(self))
                plugin_deps = raw.pop("plugin_dependencies", None)
                if plugin_deps:
                    raw.setdefault("dependencies", {})["plugins"] = plugin_deps
            state["_raw"] = raw
        return cast(dict[str, Any], raw)

    @classmethod
    def from_document(
        cls, doc: ManifestDocument, *, source: bytes | None = None, raw: Any = None
    ) -> PluginManifest:
        """The model of a decoded document; ``source`` (the file's bytes) or ``raw`` (the
        parsed dict) is what ``raw`` returns."""
        deps = doc.dependencies
        plugin_deps: dict[str, str] = {}
        if "plugins" in deps:
            deps = dict(deps)
            plugin_deps = cast(dict[str, str], deps.pop("plugins"))
        manifest = cls(
            doc.plugin,
            doc.api,
            cast(dict[str, str], deps),
            plugin_deps,
            doc.capabilities,
            doc.configuration,
            cast(dict[ServiceType, str], doc.services),
            doc.entry_points,
            doc.isolation,
            doc.permissions,
            cast(dict[str, str], doc.integrity),
        )
        if source is not None:
            manifest.__dict__["_source"] = source
        elif raw is not None:
            manifest.__dict__["_raw"] = raw
        return manifest

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PluginManifest:
        """The model of a dict that passed the JSON Schema (``x-`` keys are dropped)."""
        doc = msgspec.convert(strip_extensions(data), ManifestDocument)
        return cls.from_document(doc, raw=data)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickles and copies (a plugin sent to its sandbox process) keep what ``raw`` needs.
        return (_rebuild, (msgspec.structs.astuple(self), dict(self.__dict__)))

    def __copy__(self) -> PluginManifest:
        return _rebuild(msgspec.structs.astuple(self), dict(self.__dict__))


def _rebuild(fields: tuple[Any, ...], state: dict[str, Any]) -> PluginManifest:
    manifest = PluginManifest(*fields)
    manifest.__dict__.update(state)
    return manifest


_EXTENSIBLE = ("plugin", "capabilities")
"""Objects besides the top level whose schema allows ``x-`` keys (``patternProperties``)."""


def strip_extensions(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the ``x-`` keys the schema allows (a shallow copy where needed)."""
    out = {k: v for k, v in data.items() if not k.startswith("x-")}
    for section in _EXTENSIBLE:
        value = out.get(section)
        if isinstance(value, dict) and any(k.startswith("x-") for k in value):
            out[section] = {k: v for k, v in value.items() if not k.startswith("x-")}
    return out
