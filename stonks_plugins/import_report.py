"""A broker's import report as plain data: what each of its services keeps in
``import_report``, made JSON-ready, checked and merged.

A service keeps one of two things there:

- the SDK's ``ImportReport`` (any object with ``as_dict()``), whose dict is ``{"files":
  {name: {"rows", "understood", "skipped": {rule: count}, "reported"}}, "reported": [{"file",
  "line", "outcome", "rule", "reason", "text"}, ...], "truncated": n, "complete": bool}``;
- the older list of ``RowIssue(file, line, reason)`` rows, each a reported row. Such a list
  counts no rows per file, so ``rows`` and ``understood`` are ``None`` ("not counted"), not 0.

:func:`plain` runs where the service lives - on the plugin's lane, or in a process-isolated
plugin's child, so the plugin's own objects never cross to the host (this module imports
neither Django nor anything that does). :func:`check` (JSON Schema, in the host) and
:func:`merge` (a plugin's services may share one report: identical reports count once) turn
what the services answered into the one report the console, the API and the CLI show.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

ROWS_SHOWN = 500
"""Rows listed at most in a merged report; the rest are counted in ``truncated``."""

OUTCOMES = ("understood", "skipped", "reported")

_COUNT = {"type": ["integer", "null"], "minimum": 0}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["files", "reported"],
    "properties": {
        "files": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "rows": _COUNT,
                    "understood": _COUNT,
                    "skipped": {
                        "type": "object",
                        "additionalProperties": {"type": "integer", "minimum": 0},
                    },
                    "reported": {"type": "integer", "minimum": 0},
                },
            },
        },
        "reported": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["file", "reason"],
                "properties": {
                    "file": {"type": "string"},
                    "line": {"type": ["integer", "null"]},
                    "outcome": {"type": "string"},
                    "rule": {"type": ["string", "null"]},
                    "reason": {"type": "string"},
                    "text": {"type": ["string", "null"]},
                },
            },
        },
        "truncated": {"type": "integer", "minimum": 0},
        "complete": {"type": "boolean"},
    },
}
"""What :func:`plain` must produce, checked by the host before anything shows it."""


def plain(report: Any) -> dict[str, Any] | None:
    """``report`` (what a service keeps in ``import_report``) as JSON-ready data; None when
    the service keeps none. Raises ``TypeError`` for anything else."""
    if report is None:
        return None
    data: Any
    if isinstance(report, Mapping):
        data = dict(report)  # already plain: what a plugin's child answered
    elif callable(getattr(report, "as_dict", None)):
        data = report.as_dict()
    elif isinstance(report, Iterable) and not isinstance(report, str | bytes):
        data = _from_rows(list(report))
    else:
        raise TypeError(
            f"import_report is a {type(report).__name__}: expected the SDK's ImportReport or "
            "a list of (file, line, reason) rows"
        )
    # Through JSON and back: only builtin types leave (a child sends nothing else).
    plain_data: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return plain_data


def _from_rows(rows: list[Any]) -> dict[str, Any]:
    reported = [_row(row) for row in rows]
    per_file = Counter(r["file"] for r in reported)
    return {
        "files": {
            name: {"rows": None, "understood": None, "skipped": {}, "reported": count}
            for name, count in per_file.items()
        },
        "reported": reported,
        "truncated": 0,
        "complete": not reported,
    }


def _row(row: Any) -> dict[str, Any]:
    """A ``RowIssue`` (or any ``(file, line, reason)``) as a reported row."""
    if hasattr(row, "reason"):
        file, line, reason = getattr(row, "file", ""), getattr(row, "line", None), row.reason
    else:
        file, line, reason = tuple(row)[:3]
    return {
        "file": str(file),
        "line": line if isinstance(line, int) else None,
        "outcome": "reported",
        "rule": str(getattr(row, "rule", "") or ""),
        "reason": str(reason),
        "text": str(getattr(row, "text", "") or ""),
    }


def check(data: dict[str, Any]) -> list[str]:
    """What is wrong with ``data`` against :data:`SCHEMA`, each with its JSON path; [] when
    nothing is."""
    # Here, not at the top: a plugin's child imports this module for plain() alone.
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: e.json_path)
    return [f"{e.json_path}: {e.message}" for e in errors]


def unread(data: dict[str, Any]) -> bool:
    """The service has read no file yet (in this process, or its child)."""
    return not data.get("files") and not data.get("reported")


def merge(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One report of several services' reports (checked ones): each file once - the fuller
    count when two services read it differently -, each row once, outcome totals, and
    ``complete`` only when every report is."""
    distinct: dict[str, dict[str, Any]] = {}
    for report in reports:
        distinct.setdefault(json.dumps(report, sort_keys=True), report)
    files: dict[str, dict[str, Any]] = {}
    rows: dict[str, dict[str, Any]] = {}
    truncated = 0
    for report in distinct.values():
        for name, counts in report["files"].items():
            counts = _counts(counts)
            if name not in files or (counts["rows"] or 0) > (files[name]["rows"] or 0):
                files[name] = counts
        for row in report["reported"]:
            row = _full_row(row)
            # One row of one file once, however many services read it; the fuller telling
            # (with its rule and text) wins over an older service's bare (file, line, reason).
            where = [row["file"], row["line"], row["outcome"]]
            key = json.dumps(where if row["line"] is not None else [*where, _said(row)])
            if len(_said(row)) > len(_said(rows.get(key))):
                rows[key] = row
        truncated += int(report.get("truncated") or 0)
    listed = sorted(rows.values(), key=lambda r: (r["file"], r["line"] is None, r["line"] or 0))
    shown = listed[:ROWS_SHOWN]
    listed_reported = sum(1 for row in listed if row["outcome"] == "reported")
    return {
        "files": dict(sorted(files.items())),
        "totals": _totals(files.values(), listed_reported),
        "reported": shown,
        "truncated": truncated + len(listed) - len(shown),
        "complete": all(bool(r.get("complete", True)) for r in distinct.values()),
    }


def _counts(counts: dict[str, Any]) -> dict[str, Any]:
    return {
        "rows": counts.get("rows"),
        "understood": counts.get("understood"),
        "skipped": dict(counts.get("skipped") or {}),
        "reported": int(counts.get("reported") or 0),
    }


def _full_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "file": row["file"],
        "line": row.get("line"),
        "outcome": row.get("outcome") or "reported",
        "rule": row.get("rule") or "",
        "reason": row["reason"],
        "text": row.get("text") or "",
    }


def _said(row: dict[str, Any] | None) -> str:
    return "" if row is None else f"{row['rule']}{row['reason']}{row['text']}"


def _totals(files: Iterable[dict[str, Any]], listed: int) -> dict[str, int | None]:
    """Rows per outcome over every file; ``rows``/``understood`` are None when a file was
    not counted (an older plugin's list of rows)."""
    files = list(files)
    counted = all(f["rows"] is not None and f["understood"] is not None for f in files)
    return {
        "files": len(files),
        "rows": sum(f["rows"] for f in files) if counted else None,
        "understood": sum(f["understood"] for f in files) if counted else None,
        "skipped": sum(sum(f["skipped"].values()) for f in files),
        "reported": max(sum(f["reported"] for f in files), listed),
    }
