"""From a manifest file's bytes to a candidate: one path for every discovery source (plugin
directories, entry points, the test kit's manifest under another name), so the same bytes get
the same verdict and the same message wherever they were found.

The usual case is msgspec's fast accept: the bytes decode straight into the typed model, and
the candidate keeps neither the parsed dict nor the digest (both are made if somebody reads
them). Anything else takes the slow path, which decides: ``json`` parses the bytes (a fault
is ``manifest_unreadable``, naming the file and the line and column), jsonschema and the rules
check them (``manifest_invalid``, every issue with its JSON path).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import ReasonCode
from ..manifest.validation import (
    ManifestError,
    fast_parse_manifest,
    json_from_bytes,
    parse_manifest,
)
from ..plugin_files import describe
from .candidate import (
    DIGEST_FROM_MANIFEST,
    RAW_FROM_MANIFEST,
    Candidate,
    Problem,
    Source,
    digest,
)

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def name_from_raw(raw: Any, fallback: str) -> str:
    """The plugin name an invalid manifest gives, when it is one a plugin may have."""
    try:
        name = raw["plugin"]["name"]
    except (TypeError, KeyError):
        return fallback
    return name if isinstance(name, str) and _NAME_RE.match(name) else fallback


def candidate_from_bytes(
    data: bytes | OSError,
    path: str,
    source: Source,
    location: str,
    root: Path | None,
    rank: tuple[Any, ...],
    fallback_name: str,
    *,
    entry_point: str | None = None,
    group: str | None = None,
    name_from_manifest: bool = False,
) -> Candidate:
    """The candidate of the manifest file ``path``, whose bytes are ``data`` (or the error
    that reading them raised). ``fallback_name`` names the plugin when its manifest cannot
    be read or is invalid; with ``name_from_manifest``, an invalid manifest's own name is
    used when it is a valid plugin name (a folder's name says less than the file in it)."""
    if isinstance(data, OSError):  # nothing of it is kept: the file may be anything
        problem = Problem(ReasonCode.MANIFEST_UNREADABLE, f"{path} {describe(data)}")
        return Candidate.quick(
            fallback_name,
            source,
            location,
            root,
            None,
            None,
            "",
            problem,
            rank,
            entry_point=entry_point,
            group=group,
        )
    raw: Any = RAW_FROM_MANIFEST
    fingerprint: str = DIGEST_FROM_MANIFEST
    try:
        manifest = fast_parse_manifest(data, path)
        if manifest is None:  # the slow path decides: parse with json, check with jsonschema
            fingerprint = digest(data)
            raw = json_from_bytes(data, path)
            manifest = parse_manifest(raw, path)
    except ManifestError as err:
        if err.code is ReasonCode.MANIFEST_UNREADABLE:  # not JSON, or text no database stores
            raw = None
        elif raw is RAW_FROM_MANIFEST:  # matches the schema, breaks a rule (the fast path)
            raw = json.loads(data.decode("utf-8-sig"))
        name = name_from_raw(raw, fallback_name) if name_from_manifest else fallback_name
        return Candidate.quick(
            name,
            source,
            location,
            root,
            None,
            raw if isinstance(raw, dict) else None,
            digest(data),
            Problem(err.code, err.summary, tuple(i.as_dict() for i in err.issues)),
            rank,
            entry_point=entry_point,
            group=group,
        )
    name = manifest.name
    if name == fallback_name:  # one string kept for the folder's (entry point's) and this
        name = fallback_name
    return Candidate.quick(
        name,
        source,
        location,
        root,
        manifest,
        raw,
        fingerprint,
        None,
        rank,
        entry_point=entry_point,
        group=group,
    )
