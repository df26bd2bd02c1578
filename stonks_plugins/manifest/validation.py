"""Validate manifests against the published JSON Schema, then against the rules a schema
cannot express (parseable versions and specifiers, a broker that names its code).

Two paths, one verdict:

- fast accept: msgspec decodes the bytes (or converts the parsed dict) straight into the
  typed model, whose Structs mirror the schema (``model.py``). A manifest it accepts is
  schema-valid, at a small multiple of a plain parse (benchmarks/README.md compares it with
  jsonschema);
- slow path, which decides: anything msgspec rejects (including JSON that only ``json``
  reads, such as ``NaN``) is parsed by ``json`` (:mod:`.json_text`) and checked by
  ``jsonschema`` (:mod:`.schema_check`), which reports *every* error with its JSON path.

``x-`` keys, which the schema allows through ``patternProperties`` and msgspec's closed
Structs cannot express, are dropped where the schema allows them before msgspec converts
the rest; anywhere else they fail the conversion like any unknown key.

The extra rules (:mod:`.rules`) run on the typed model either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from ..errors import ReasonCode
from ..plugin_files import MANIFEST_SETTING, describe, manifest_limit, read_plugin_file
from .issues import ManifestError, ManifestIssue
from .json_text import json_from_bytes, text_fault
from .model import ManifestDocument, PluginManifest, strip_extensions
from .rules import clear_memos, rule_issues
from .schema_check import SCHEMA_RESOURCE, manifest_schema, schema_issues, slow_document

__all__ = [
    "MANIFEST_FILENAME",
    "SCHEMA_RESOURCE",
    "ManifestError",
    "ManifestIssue",
    "clear_memos",
    "fast_parse_manifest",
    "json_from_bytes",
    "load_manifest_file",
    "manifest_schema",
    "parse_manifest",
    "read_manifest_json",
    "text_fault",
    "validate_manifest",
]

MANIFEST_FILENAME = "plugin_manifest.json"

# The names these had here before the split (the differential tests read them).
_rule_issues = rule_issues
_schema_issues = schema_issues
_slow_document = slow_document


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


def fast_parse_manifest(
    data: bytes, source: str, *, checked: bool = False
) -> PluginManifest | None:
    """The typed manifest of a file's bytes when msgspec accepts them, else None: the caller
    then parses them with ``json`` and calls :func:`parse_manifest`, which decides.

    Raises ``manifest_invalid`` when the manifest matches the schema but breaks a rule.
    ``checked``: these very bytes passed the rules before (a discovered manifest decoded
    again): they are not run again, which is a third of the decode.
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
    if checked:
        return manifest
    issues = rule_issues(manifest)
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


# -- one verdict ----------------------------------------------------------------------------


def _check(data: Any) -> tuple[list[ManifestIssue], PluginManifest | None]:
    """Issues of parsed JSON and, when there are none, its typed manifest."""
    try:
        doc = _fast_convert(data)
        if doc is None:
            issues, doc = slow_document(data)
            if doc is None:
                return issues, None
        manifest = PluginManifest.from_document(doc, raw=data)
        issues = rule_issues(manifest)
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
