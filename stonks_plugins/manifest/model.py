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
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, cast

import msgspec
from msgspec import Meta

from stonks_overwatch.core.service_types import ServiceType


def _code_paths(quantifier: str, group: str = "(") -> tuple[str, str]:
    """The bodies of DOTTED_PATTERN (``pkg.mod.Class``) and OBJECT_REF_PATTERN
    (``pkg.mod:Class``), every repetition followed by ``quantifier`` and every group opened
    with ``group``: "" and "(" as published; "+" (possessive) and "(?:" (no capture, which
    costs a mark per repetition) for the fast path's combined check (see ``_STRINGS``)."""
    ident = f"[A-Za-z_][A-Za-z0-9_]*{quantifier}"
    idents = f"{ident}{group}\\.{ident})*{quantifier}"
    return f"{ident}{group}\\.{ident})+{quantifier}", f"{idents}:{idents}"


# The schema's "definitions", as published (with ECMA-262 "$").
VERSION_PATTERN = r"^[0-9]+(\.[0-9]+)*([-.+]?[A-Za-z0-9.+-]*)?$"
DOTTED_PATTERN, OBJECT_REF_PATTERN = (f"^{body}$" for body in _code_paths(""))
PLUGIN_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
HOMEPAGE_PATTERN = r"^https?://"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$"
"""A language code as Django writes them (``nl``, ``es``, ``pt-br``, ``zh-hans``)."""


def ecma_pattern(pattern: str) -> str:
    """``pattern`` for Python's ``re.search`` with ECMA-262 meaning: a final unescaped ``$``
    (end of input only) becomes ``\\Z``."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + r"\Z"
    return pattern


def deferred(pattern: str) -> dict[str, str]:
    """``Meta(extra_json_schema=deferred(P))``: the string must match ``P``, checked by
    :meth:`PluginManifest.__post_init__`, a regex call for all the long strings at once
    rather than msgspec's ``re.search`` call per string (which made two thirds of a typed
    decode with a dozen patterned strings)."""
    return {"pattern": ecma_pattern(pattern)}


VersionStr = Annotated[
    str, Meta(min_length=1, max_length=64, extra_json_schema=deferred(VERSION_PATTERN))
]
Dotted = Annotated[str, Meta(extra_json_schema=deferred(DOTTED_PATTERN))]
ObjectRef = Annotated[str, Meta(extra_json_schema=deferred(OBJECT_REF_PATTERN))]
PluginName = Annotated[str, Meta(pattern=ecma_pattern(PLUGIN_NAME_PATTERN))]
"""Checked by msgspec: only dictionary keys (``dependencies.plugins``, a few manifests) use it
on its own; ``plugin.name`` is :data:`PluginNameField`."""
PluginNameField = Annotated[str, Meta(extra_json_schema=deferred(PLUGIN_NAME_PATTERN))]
Homepage = Annotated[str, Meta(extra_json_schema=deferred(HOMEPAGE_PATTERN))]
_WEB = ("http://", "https://")
"""What HOMEPAGE_PATTERN (``^https?://``) says, as a ``str.startswith`` argument."""
Sha256 = Annotated[str, Meta(pattern=ecma_pattern(SHA256_PATTERN))]
LanguageCode = Annotated[str, Meta(pattern=ecma_pattern(LANGUAGE_PATTERN))]
ConfigSchemaVersion = Annotated[int, Meta(ge=1, le=1_000_000)]
"""``configuration.version``: the schema's ``minimum`` and ``maximum`` (msgspec's ints are
64-bit: an unbounded schema integer would accept what the model cannot hold)."""

# The grammar of one declared permission (docs/trust.md, "Permissions"; what each one allows
# is ``stonks_plugins.sandbox.permissions``): ``network:HOST[:PORT]`` - HOST a name, ``*.``
# and a domain (its subdomains), ``*`` (any host), an IPv4 literal or a bracketed IPv6 one,
# PORT 1 to 65535; ``read:PATH`` and ``write:PATH`` - PATH relative to the plugin folder,
# absolute, or under ``~`` or ``$TMPDIR`` (the temporary directory); ``subprocess:PROGRAM``
# - a name looked up on PATH or an absolute path; ``env:NAME`` - an environment variable,
# ``NAME*`` every one starting with NAME. Checked here so a typo is ``manifest_invalid``
# naming the entry, not a permission that silently grants nothing.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = f"(?:\\*|(?:\\*\\.)?{_LABEL}(?:\\.{_LABEL})*|\\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\\])"
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_PATH = "(?:(?:~|\\$TMPDIR)(?:/[^\\x00-\\x1f\\x7f]*)?|[^~$ \\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*)"
_PROGRAM = "(?:[A-Za-z0-9_][A-Za-z0-9._+-]*|/[^\\x00-\\x1f\\x7f]+)"
_ENV_NAME = "[A-Za-z_][A-Za-z0-9_]*\\*?"
PERMISSION_PATTERN = (
    f"^(?:network:{_HOST}(?::{_PORT})?|(?:read|write):{_PATH}"
    f"|subprocess:{_PROGRAM}|env:{_ENV_NAME})$"
)
Permission = Annotated[str, Meta(min_length=1, pattern=ecma_pattern(PERMISSION_PATTERN))]
"""One entry of ``permissions``, checked by msgspec (few manifests declare any)."""
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
    OptHomepage: TypeAlias = str | None
    OptBool: TypeAlias = bool | None
else:
    OptVersion = VersionStr
    OptDotted = Dotted
    OptObjectRef = ObjectRef
    OptConfigSchema = dict[str, Any] | str
    OptHomepage = Homepage
    OptBool = bool


class _Section(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False
):
    """Base of the manifest's objects: immutable, closed, and untracked by the garbage
    collector (they hold only strings, tuples and dicts of strings: no reference cycles)."""


class PluginTexts(_Section, frozen=True):
    """``display_name`` and ``description`` in one other language."""

    display_name: Annotated[str, Meta(max_length=200)] = ""
    description: Annotated[str, Meta(max_length=2000)] = ""


class PluginInfo(_Section, frozen=True):
    name: PluginNameField
    version: VersionStr
    type: PluginType
    display_name: Annotated[str, Meta(max_length=200)] = ""
    description: Annotated[str, Meta(max_length=2000)] = ""
    author: Annotated[str, Meta(max_length=200)] = ""
    license: Annotated[str, Meta(max_length=100)] = ""
    homepage: OptHomepage = None
    translations: Annotated[dict[LanguageCode, PluginTexts], Meta(max_length=50)] = {}
    """The texts above in other languages, by language code (see :mod:`.texts`)."""


class ApiSpec(_Section, frozen=True):
    min_version: VersionStr
    max_version: OptVersion = None
    interfaces: StringList = ()


class Capabilities(_Section, frozen=True):
    services: tuple[ServiceType, ...] = ()
    features: StringList = ()
    supported_markets: StringList = ()
    supported_currencies: StringList = ()
    multiple_instances: OptBool = None
    """Whether the plugin may be configured more than once; see
    :attr:`PluginManifest.allows_instances` for what absent means."""


class ConfigurationSpec(_Section, frozen=True):
    config_class: OptDotted = None
    required_credentials: StringList = ()
    optional_settings: StringList = ()
    schema: OptConfigSchema = None
    """JSON Schema of the plugin's config, inline (an object) or a path relative to the
    manifest."""
    version: ConfigSchemaVersion = 1
    """Version of that schema: stored configs record the one they were written for, and an
    upgrade that raises it runs the plugin's ``migrate_config`` (``config.upgrade``)."""


class EntryPoints(_Section, frozen=True):
    main: OptObjectRef = None
    config: OptObjectRef = None


# Every deferred string of a manifest is checked by one regex call on one text: the plugin's
# name, its version, api.min_version, api.max_version, configuration.config_class,
# entry_points.main and entry_points.config (each optional one empty when absent), then the
# dotted paths of ``services``, joined by "\n". No pattern's character class admits "\n", so
# with the "\n" counted (a value holding one would add to the count) each value must match
# its own pattern, whole (the ECMA meaning of "$", see ``ecma_pattern``); an empty value is
# accepted only where absence is represented. Possessive: the characters that may follow a
# repetition are never in its class, so giving some back could never help a match.
#
# VERSION_PATTERN, ``[0-9]+(\.[0-9]+)*([-.+]?[A-Za-z0-9.+-]*)?``, matches exactly the strings
# of one digit and then any of ``[A-Za-z0-9.+-]`` (its optional tail admits digits and dots,
# so the middle group adds nothing); that form cannot backtrack. A test checks the two agree.
_NAME = "[a-z0-9][a-z0-9._-]{0,63}+"
_VERSION = "[0-9][A-Za-z0-9.+-]*+"
_DOTTED, _OBJECT_REF = _code_paths("+", "(?:")
_STRINGS = re.compile(
    f"{_NAME}\n{_VERSION}\n{_VERSION}\n(?:{_VERSION})?+\n(?:{_DOTTED})?+"
    f"\n(?:{_OBJECT_REF})?+\n(?:{_OBJECT_REF})?+(?:\n{_DOTTED})*+"
).fullmatch
_FIXED_SLOTS = 7
"""Values before the services' paths in the text ``_STRINGS`` checks."""


def _unique(items: tuple[Any, ...]) -> bool:
    return len(items) < 2 or len(set(items)) == len(items)


_NO_CAPABILITIES = Capabilities()
_NO_CONFIGURATION = ConfigurationSpec()
_NO_ENTRY_POINTS = EntryPoints()


class PluginManifest(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    dict=True,
):
    """A whole, valid ``plugin_manifest.json``: the decoding target itself, so a manifest is
    built in one msgspec pass (a second Struct built from a decoded document cost a tenth
    of a cold scan). ``raw`` is its dict form, parsed from the file's bytes on first access
    (discovery does not pay for it) or the dict it was built from."""

    plugin: PluginInfo
    api: ApiSpec
    requires: dict[str, str | dict[PluginName, str]] = msgspec.field(
        default_factory=dict, name="dependencies"
    )
    """The manifest's ``dependencies`` as written, ``plugins`` included; see
    :attr:`dependencies` and :attr:`plugin_dependencies`."""
    capabilities: Capabilities = _NO_CAPABILITIES
    configuration: ConfigurationSpec = _NO_CONFIGURATION
    services: dict[ServiceType, Dotted] = {}
    entry_points: EntryPoints = _NO_ENTRY_POINTS
    isolation: Isolation = "in_process"
    permissions: tuple[Permission, ...] = ()
    integrity: dict[str, Sha256] = {}

    def __post_init__(self) -> None:
        # What the Meta constraints cannot say; a ValueError here is a msgspec ValidationError.
        # One hook for the whole document: a call per section would cost more than the checks.
        plugin, api, caps, conf = self.plugin, self.api, self.capabilities, self.configuration
        strings = [
            *api.interfaces,
            *caps.features,
            *caps.supported_markets,
            *caps.supported_currencies,
            *conf.required_credentials,
            *conf.optional_settings,
            *self.permissions,
        ]
        # All strings distinct (the usual case) proves each list's items are; only a repeat
        # somewhere needs the lists one by one.
        if len(set(strings)) != len(strings) and not all(
            map(
                _unique,
                (
                    api.interfaces,
                    caps.features,
                    caps.supported_markets,
                    caps.supported_currencies,
                    conf.required_credentials,
                    conf.optional_settings,
                    self.permissions,
                ),
            )
        ):
            raise ValueError("array items must be unique (uniqueItems)")
        services = caps.services  # enum members, kept apart: "fee" may be a feature too
        if len(services) > 1 and len(set(services)) != len(services):
            raise ValueError("array items must be unique (uniqueItems)")
        if plugin.homepage is not None and not plugin.homepage.startswith(_WEB):
            raise ValueError("plugin.homepage: not a web address")
        # "plugins" maps plugin names to specifiers; every other key is a specifier string.
        requires = self.requires
        plugins = requires.get("plugins")
        if plugins is not None:  # split once, here; most manifests have no "plugins"
            distributions = dict(requires)
            del distributions["plugins"]
            if type(plugins) is not dict or dict in map(type, distributions.values()):
                raise ValueError("dependencies: wrong type")
            self.__dict__["_plugin_deps"] = plugins
            self.__dict__["_deps"] = distributions
        elif dict in map(type, requires.values()):
            raise ValueError("dependencies: wrong type")
        # The deferred patterns (see ``deferred`` and ``_STRINGS``).
        refs, paths = self.entry_points, self.services
        config_class, main, config = conf.config_class, refs.main, refs.config
        if "" in (config_class, main, config):  # an empty slot must mean absent (None)
            raise ValueError("a string does not match its pattern")
        text = "\n".join(
            (
                plugin.name,
                plugin.version,
                api.min_version,
                api.max_version or "",  # min_length 1: empty means absent
                config_class or "",
                main or "",
                config or "",
                *paths.values(),
            )
        )
        if text.count("\n") != _FIXED_SLOTS - 1 + len(paths) or _STRINGS(text) is None:
            raise ValueError("a string does not match its pattern")

    @property
    def dependencies(self) -> dict[str, str]:
        """Requirement specifiers by distribution name (and ``python``); no ``plugins``."""
        # A quoted cast: ``dict[str, str]`` would build a type object on every call.
        return cast("dict[str, str]", self.__dict__.get("_deps", self.requires))

    @property
    def plugin_dependencies(self) -> dict[str, str]:
        """Version specifiers of the other plugins this one needs, by plugin name."""
        return cast("dict[str, str]", self.__dict__.get("_plugin_deps", _NO_PLUGINS))

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
    def allows_instances(self) -> bool:
        """Whether the plugin may be configured more than once (``NAME:LABEL``). Never a
        plugin that is a Django app (``x-django-app``: its app exists once per process);
        else ``capabilities.multiple_instances`` when given; else brokers may (an account
        per instance) and other types may not (a second view or middleware would take the
        same URLs and hooks)."""
        if "x-django-app" in self.raw:
            return False
        declared = self.capabilities.multiple_instances
        if declared is not None:
            return declared
        return self.plugin.type == "broker"

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
            state["_raw"] = raw
        return cast("dict[str, Any]", raw)

    @classmethod
    def from_document(
        cls, doc: PluginManifest, *, source: bytes | None = None, raw: Any = None
    ) -> PluginManifest:
        """``doc`` with what ``raw`` returns: ``source`` (the file's bytes it was decoded
        from) or ``raw`` (the parsed dict it was converted from)."""
        if source is not None:
            doc.__dict__["_source"] = source
        elif raw is not None:
            doc.__dict__["_raw"] = raw
        return doc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PluginManifest:
        """The model of a dict that passed the JSON Schema (``x-`` keys are dropped)."""
        return cls.from_document(msgspec.convert(strip_extensions(data), cls), raw=data)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickles and copies (a plugin sent to its sandbox process) keep what ``raw`` needs.
        return (_rebuild, (msgspec.structs.astuple(self), dict(self.__dict__)))

    def __copy__(self) -> PluginManifest:
        return _rebuild(msgspec.structs.astuple(self), dict(self.__dict__))


ManifestDocument = PluginManifest
"""The decoding target's name in the validation code (it is the model itself)."""
_NO_PLUGINS: dict[str, str] = {}


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
