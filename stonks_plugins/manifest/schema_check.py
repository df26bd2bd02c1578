"""The slow path, which decides: the published JSON Schema checked by ``jsonschema``, which
reports *every* error with its JSON path, worded for the operator. ``jsonschema`` is
imported on first use (start-up does not pay for it)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import msgspec

from .. import jsonpath
from .issues import ManifestIssue
from .model import ManifestDocument, ecma_pattern, strip_extensions

SCHEMA_RESOURCE = "plugin_manifest.schema.json"


@cache
def manifest_schema() -> dict[str, Any]:
    """The published JSON Schema, shipped inside the package."""
    text = resources.files("stonks_plugins.schemas").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


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


def schema_issues(data: Any) -> list[ManifestIssue]:
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


def slow_document(data: Any) -> tuple[list[ManifestIssue], ManifestDocument | None]:
    issues = schema_issues(data)
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


_SHOWN = 80


def _shown(value: Any) -> str:
    """A value quoted in a message, cut short: the message is stored and shown on every
    page, and the value may be as long as the manifest."""
    text = repr(value)
    if len(text) <= _SHOWN:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[: _SHOWN - 20]}...{size}"
