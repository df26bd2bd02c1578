"""A manifest's bytes parsed with ``json``, refusing text no database can store; the same
bad JSON gets the same message from every discovery source."""

from __future__ import annotations

import json
from typing import Any

from .. import jsonpath
from ..errors import ReasonCode
from .issues import ManifestError, ManifestIssue


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
