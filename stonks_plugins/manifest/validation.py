"""Validate manifests against the published JSON Schema, then against the rules a schema
cannot express (parseable versions and specifiers, a broker that names its code).

Two paths, one verdict:

- fast accept: msgspec decodes the bytes (or converts the parsed dict) straight into the
  typed model, whose Structs mirror the schema (``model.py``). A manifest it accepts is
  schema-valid, at a small multiple of a plain parse (jsonschema costs 20 to 50 times more);
- slow path, which decides: anything msgspec rejects (including JSON that only ``json``
  reads, such as ``NaN``) is parsed by ``json`` and checked by ``jsonschema``, which reports
  *every* error with its JSON path.

``x-`` keys, which the schema allows through ``patternProperties`` and msgspec's closed
Structs cannot express, are dropped where the schema allows them before msgspec converts
the rest; anywhere else they fail the conversion like any unknown key.

The extra rules run on the typed model either way; their parsing is memoised per string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .. import jsonpath
from ..errors import ReasonCode, StonksPluginsError
from ..plugin_files import MANIFEST_SETTING, describe, manifest_limit, read_plugin_file
from .model import ManifestDocument, PluginManifest, ecma_pattern, strip_extensions

MANIFEST_FILENAME = "plugin_manifest.json"
SCHEMA_RESOURCE = "plugin_manifest.schema.json"


@dataclass(frozen=True)
class ManifestIssue:
    """One problem: where (a JSON path such as ``$.plugin.version``) and what was expected."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class ManifestError(StonksPluginsError):
    """A manifest that cannot be read (``manifest_unreadable``) or is invalid
    (``manifest_invalid``). ``issues`` lists every problem found."""

    code: ReasonCode

    def __init__(self, code: ReasonCode, source: str, issues: list[ManifestIssue]) -> None:
        self.code = code
        self.source = source
        self.issues = issues
        super().__init__(self.summary)

    @property
    def summary(self) -> str:
        """``SOURCE: ISSUE; ISSUE...``, at most five; a fault of the whole file (the JSON path
        ``$``, such as a JSON syntax error) is said without a path, after the file's."""
        shown = "; ".join(i.message if i.path == "$" else str(i) for i in self.issues[:5])
        more = f" (and {len(self.issues) - 5} more)" if len(self.issues) > 5 else ""
        return f"{self.source}: {shown}{more}"


@cache
def manifest_schema() -> dict[str, Any]:
    """The published JSON Schema, shipped inside the package."""
    text = resources.files("stonks_plugins.schemas").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


# -- fast accept ----------------------------------------------------------------------------

_DECODER = msgspec.json.Decoder(ManifestDocument)
_NUL_ESCAPE = b"\\u0000"
_BOM = b"\xef\xbb\xbf"
_UNDECIDED = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError)
"""msgspec's verdicts that hand a manifest to the slow path: not decoded (including JSON
that ``json`` may still parse), not valid, not UTF-8, or nested beyond its recursion limit."""


def _fast_document(data: bytes) -> ManifestDocument | None:
    if data.startswith(_BOM):
        data = data[3:]
    try:
        return _DECODER.decode(data)
    except _UNDECIDED:
        pass
    # Perhaps 'x-' keys, which the closed Structs refuse: parse without types, drop them where
    # the schema allows them, and convert what is left (still a fraction of jsonschema's cost).
    try:
        parsed = msgspec.json.decode(data)
    except _UNDECIDED:
        return None
    return _fast_convert(parsed)


def fast_parse_manifest(data: bytes, source: str) -> PluginManifest | None:
    """The typed manifest of a file's bytes when msgspec accepts them, else None: the caller
    then parses them with ``json`` and calls :func:`parse_manifest`, which decides.

    Raises ``manifest_invalid`` when the manifest matches the schema but breaks a rule.
    """
    # msgspec keeps an escaped NUL, which the slow path refuses (text_fault). Most manifests
    # hold no backslash at all, and looking for one byte is a fifth of looking for six.
    if b"\\" in data and _NUL_ESCAPE in data:
        return None
    try:  # the usual case, without a call more
        doc = _DECODER.decode(data)
    except _UNDECIDED:  # perhaps a byte order mark or 'x-' keys
        found = _fast_document(data)
        if found is None:
            return None
        doc = found
    manifest = PluginManifest.from_document(doc, source=data)
    issues = _rule_issues(manifest)
    if issues:
        raise ManifestError(ReasonCode.MANIFEST_INVALID, source, issues)
    return manifest


def _fast_convert(data: Any) -> ManifestDocument | None:
    """The document of parsed JSON when msgspec accepts it, ``x-`` keys allowed where the
    schema allows them (``patternProperties``: any value)."""
    if type(data) is not dict:
        return None
    try:
        return msgspec.convert(strip_extensions(data), ManifestDocument)
    except _UNDECIDED:
        return None


# -- slow path: jsonschema decides --------------------------------------------------------


def _ecma_pattern_keyword(
    validator: Any, pattern: str, instance: Any, schema: Any
) -> Iterator[Any]:
    """Draft 7's ``pattern`` with ECMA-262 meaning (see ``ecma_pattern``): jsonschema's own
    uses Python's ``re.search``, whose ``$`` also matches before a final newline."""
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_pattern(pattern))


@cache
def _validator() -> Any:
    from jsonschema import Draft7Validator, validators

    cls = validators.extend(Draft7Validator, {"pattern": _ecma_pattern_keyword})
    return cls(manifest_schema())


def _schema_issues(data: Any) -> list[ManifestIssue]:
    issues = []
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    for err in errors:
        path = err.json_path
        if err.validator == "required" and isinstance(err.validator_value, list):
            missing = [
                k
                for k in err.validator_value
                if isinstance(err.instance, dict) and k not in err.instance
            ]
            for key in missing:
                issues.append(ManifestIssue(jsonpath.child(path, key), "is required but missing"))
            continue
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = sorted(err.schema.get("properties", {}))
            free = list(err.schema.get("patternProperties", {}))
            expected = ", ".join(allowed) + (" (or an 'x-' key)" if free else "")
            for key in err.instance:
                if key not in allowed and not any(re.search(p, key) for p in free):
                    issues.append(
                        ManifestIssue(
                            jsonpath.child(path, key), f"unknown key; expected one of {expected}"
                        )
                    )
            continue
        if err.validator == "pattern":
            issues.append(
                ManifestIssue(
                    path,
                    f"{_shown(err.instance)} does not match the expected format "
                    f"{err.validator_value!r}",
                )
            )
            continue
        message, whole = err.message, repr(err.instance)
        if len(whole) > _SHOWN and message.startswith(whole):  # jsonschema quotes the value
            message = _shown(err.instance) + message[len(whole) :]
        issues.append(ManifestIssue(path, message))
    if errors and not issues:  # every error is worded above; this is a safety net
        issues.append(ManifestIssue("$", "does not match the manifest schema"))
    return issues


def _slow_document(data: Any) -> tuple[list[ManifestIssue], ManifestDocument | None]:
    issues = _schema_issues(data)
    if issues:
        return issues, None
    try:
        return [], msgspec.convert(strip_extensions(data), ManifestDocument)
    except msgspec.ValidationError as exc:
        # jsonschema accepted what the typed model cannot hold: a disagreement between the
        # schema and model.py (the tests look for one). The manifest is not used.
        text = str(exc)
        where = text.rsplit(" - at `", 1)
        path = where[1].rstrip("`") if len(where) == 2 else "$"
        return [ManifestIssue(path, f"not accepted by the manifest model: {where[0]}")], None


# -- rules beyond the schema -------------------------------------------------------------


@lru_cache(maxsize=4096)
def _version(text: str) -> Version | None:
    """Memoised: plugins repeat the same versions, and the cache is cleared with the scan's."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


@lru_cache(maxsize=1024)
def _valid_specifier(spec: str) -> bool:
    """Memoised: plugins repeat the same few ranges, and parsing one costs microseconds."""
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        return False
    return True


def clear_memos() -> None:
    """Forget memoised checks (so a cold discovery pays for them again)."""
    _version.cache_clear()
    _valid_specifier.cache_clear()
    _api_range_issues.cache_clear()


_plain_release = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z").match
"""Versions such as "1.0.0": valid PEP 440 without building a ``Version`` (every plugin has
its own version, so a memo rarely helps with ``plugin.version``)."""


def _version_issue(path: str, value: str) -> ManifestIssue:
    return ManifestIssue(path, f"{value!r} is not a valid version (PEP 440, e.g. '1.0.0')")


@lru_cache(maxsize=1024)
def _api_range_issues(low: str, high: str | None) -> tuple[ManifestIssue, ...]:
    """Memoised: plugins repeat the same few API ranges, and comparing two ``Version``s runs
    Python code."""
    lowest = _version(low)
    issues = [] if lowest is not None else [_version_issue("$.api.min_version", low)]
    if high is not None:
        highest = _version(high)
        if highest is None:
            issues.append(_version_issue("$.api.max_version", high))
        elif lowest is not None and highest < lowest:
            issues.append(
                ManifestIssue("$.api.max_version", f"{high!r} is lower than min_version {low!r}")
            )
    return tuple(issues)


def _specifier_issues(prefix: str, deps: dict[str, str]) -> list[ManifestIssue]:
    return [
        ManifestIssue(prefix + key, f"{spec!r} is not a valid version specifier (e.g. '>=1.0,<2')")
        for key, spec in deps.items()
        if not _valid_specifier(spec)
    ]


def _rule_issues(manifest: PluginManifest) -> list[ManifestIssue]:
    """Rules beyond the schema, on a schema-valid manifest. Each rule is one cheap test on
    the usual, valid manifest; the messages are built only for a rule that fails."""
    plugin, api = manifest.plugin, manifest.api
    issues: list[ManifestIssue] = []
    version = plugin.version
    if _plain_release(version) is None and _version(version) is None:
        issues.append(_version_issue("$.plugin.version", version))
    issues += _api_range_issues(api.min_version, api.max_version)
    deps = manifest.dependencies
    if not all(map(_valid_specifier, deps.values())):
        issues += _specifier_issues("$.dependencies.", deps)
    deps = manifest.plugin_dependencies
    if deps and not all(map(_valid_specifier, deps.values())):
        issues += _specifier_issues("$.dependencies.plugins.", deps)
    if manifest.entry_points.main is None:
        issues += _service_issues(manifest)
    return issues


def _service_issues(manifest: PluginManifest) -> list[ManifestIssue]:
    """With no plugin class (entry_points.main), the services map is the plugin: a broker
    must have one, and it must name a class for every declared service."""
    services = manifest.services
    if not services:
        if manifest.plugin.type != "broker":
            return []
        return [
            ManifestIssue(
                "$.services",
                "a broker plugin must name its service classes here "
                '(e.g. {"portfolio": "mypkg.services.PortfolioService"}) '
                "or a plugin class in entry_points.main",
            )
        ]
    return [
        ManifestIssue(
            f"$.capabilities.services[{i}]",
            f"declares the '{svc.value}' service but $.services names no class for it",
        )
        for i, svc in enumerate(manifest.capabilities.services)
        if svc not in services
    ]


_SHOWN = 80


def _shown(value: Any) -> str:
    """A value quoted in a message, cut short: the message is stored and shown on every
    page, and the value may be as long as the manifest."""
    text = repr(value)
    if len(text) <= _SHOWN:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[: _SHOWN - 20]}...{size}"


def _check(data: Any) -> tuple[list[ManifestIssue], PluginManifest | None]:
    """Issues of parsed JSON and, when there are none, its typed manifest."""
    try:
        doc = _fast_convert(data)
        if doc is None:
            issues, doc = _slow_document(data)
            if doc is None:
                return issues, None
        manifest = PluginManifest.from_document(doc, raw=data)
        issues = _rule_issues(manifest)
    except RecursionError:  # jsonschema recurses into nested arrays (uniqueItems)
        return [ManifestIssue("$", "arrays or objects are nested too deeply to be checked")], None
    return issues, None if issues else manifest


def validate_manifest(data: Any) -> list[ManifestIssue]:
    """Every problem with ``data`` (parsed JSON); an empty list means valid."""
    return _check(data)[0]


def parse_manifest(data: Any, source: str) -> PluginManifest:
    """The typed manifest of parsed JSON; raises ``manifest_invalid`` listing every issue."""
    issues, manifest = _check(data)
    if manifest is None:
        raise ManifestError(ReasonCode.MANIFEST_INVALID, source, issues)
    return manifest


def text_fault(data: Any) -> ManifestIssue | None:
    """The first key or string of parsed JSON that no database can store, if any: a lone
    surrogate (JSON may escape one, ``"\\ud800"``; UTF-8 cannot encode it) or a NUL
    character (``"\\u0000"``, which PostgreSQL refuses). msgspec refuses the first and
    :func:`fast_parse_manifest` leaves the second to the slow path, so only ``json``'s
    results need this. Walks without recursion: the JSON may be nested deeply."""
    stack: list[tuple[str, Any]] = [("$", data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not _storable(key):
                    return _text_issue(path, key, f"a key of {path}")
                stack.append((jsonpath.child(path, key), value))
        elif isinstance(node, list):
            stack.extend((jsonpath.child(path, i), v) for i, v in enumerate(node))
        elif isinstance(node, str) and not _storable(node):
            return _text_issue(path, node, "a string")
    return None


def _storable(text: str) -> bool:
    if text.isascii():
        return "\x00" not in text
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_issue(path: str, text: str, what: str) -> ManifestIssue:
    fault = (
        "a NUL character (\\u0000)"
        if "\x00" in text
        else "a lone surrogate escape (\\ud800 to \\udfff, half of a pair), which is not text"
    )
    return ManifestIssue(
        path, f"{what} holds {fault}; it cannot be stored: remove it from the manifest"
    )


def json_from_bytes(data: bytes, source: str) -> Any:
    """Parse a manifest's bytes with ``json`` (what the slow path and ``raw`` see); raise
    ``manifest_unreadable`` with the position of the fault. Every discovery source reads
    bytes through here (``discovery.manifest_bytes``): the same bad JSON gets the same
    message, ``SOURCE: invalid JSON at line L, column C: WHAT``."""
    try:
        parsed = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        fault = f"not UTF-8: {exc}"
    except RecursionError:
        fault = "invalid JSON: arrays or objects nested too deeply to parse"
    except json.JSONDecodeError as exc:
        fault = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    else:
        issue = text_fault(parsed)
        if issue is None:
            return parsed
        raise ManifestError(ReasonCode.MANIFEST_UNREADABLE, source, [issue])
    raise ManifestError(ReasonCode.MANIFEST_UNREADABLE, source, [ManifestIssue("$", fault)])


def _read_bytes(path: Path) -> bytes:
    """A manifest file's bytes: a regular file of at most ``PLUGINS_MAX_MANIFEST_BYTES``."""
    try:
        return read_plugin_file(path, manifest_limit(), setting=MANIFEST_SETTING)
    except FileNotFoundError:
        raise ManifestError(
            ReasonCode.MANIFEST_UNREADABLE,
            str(path),
            [ManifestIssue("$", f"no {MANIFEST_FILENAME} found")],
        ) from None
    except OSError as exc:
        raise ManifestError(
            ReasonCode.MANIFEST_UNREADABLE,
            str(path),
            [ManifestIssue("$", f"the file {describe(exc)}")],
        ) from None


def read_manifest_json(path: Path) -> Any:
    """Parse a manifest file; raise ``manifest_unreadable`` with the position of the fault."""
    return json_from_bytes(_read_bytes(path), str(path))


def load_manifest_file(path: Path) -> PluginManifest:
    """The typed manifest of a file: the fast path, else ``json`` and the slow path."""
    data = _read_bytes(path)
    manifest = fast_parse_manifest(data, str(path))
    if manifest is not None:
        return manifest
    return parse_manifest(json_from_bytes(data, str(path)), str(path))
