"""Validate a plugin config against its schema: fill defaults, refuse unknown keys, and
report every error with its JSON path and the rule it breaks — without ever echoing a
secret's value."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from .schema import secret_paths


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str
    rule: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "rule": self.rule}

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.rule}]"


class ConfigInvalid(Exception):
    """A config that does not match its schema; nothing was saved or applied."""

    def __init__(self, plugin: str, issues: list[ConfigIssue]) -> None:
        shown = "; ".join(str(i) for i in issues[:5])
        super().__init__(f"plugin '{plugin}': invalid config: {shown}")
        self.plugin = plugin
        self.issues = issues


def fill_defaults(schema: dict[str, Any], data: Any) -> Any:
    """Missing keys take the schema's ``default``; a missing object whose properties have
    defaults is created, so ``settings.session_timeout`` gets its default even when the
    user never wrote a ``settings`` section."""
    if not isinstance(data, dict) or not isinstance(schema, dict):
        return data
    out = dict(data)
    for key, field in (schema.get("properties") or {}).items():
        if not isinstance(field, dict):
            continue
        if key not in out:
            if "default" in field:
                out[key] = copy.deepcopy(field["default"])
            elif _has_defaults(field):
                out[key] = fill_defaults(field, {})
                continue
            else:
                continue
        out[key] = fill_defaults(field, out[key])
    return out


def _has_defaults(field: dict[str, Any]) -> bool:
    props = field.get("properties") or {}
    return any(isinstance(f, dict) and ("default" in f or _has_defaults(f)) for f in props.values())


@lru_cache(maxsize=64)
def _validator_class() -> type:
    return validators.extend(Draft202012Validator, {})


def _secret_json_paths(schema: dict[str, Any]) -> set[str]:
    return {"$." + ".".join(p) for p in secret_paths(schema)}


def _iter_issues(schema: dict[str, Any], data: Any) -> Iterator[ConfigIssue]:
    secrets = _secret_json_paths(schema)
    validator = Draft202012Validator(schema)
    for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        path = err.json_path
        rule = str(err.validator)
        if err.validator == "required" and isinstance(err.instance, dict):
            for key in err.validator_value:
                if key not in err.instance:
                    yield ConfigIssue(f"{path}.{key}", "is required but missing", "required")
            continue
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = sorted(err.schema.get("properties") or {})
            for key in err.instance:
                if key not in allowed:
                    yield ConfigIssue(
                        f"{path}.{key}",
                        f"unknown key; expected one of: {', '.join(allowed) or '(none)'}",
                        "additionalProperties",
                    )
            continue
        yield ConfigIssue(path, _message(err, path in secrets), rule)


def _message(err: ValidationError, secret: bool) -> str:
    if not secret:
        return err.message
    # jsonschema's messages quote the value; for a secret say only what was expected.
    expected = err.validator_value
    return f"does not satisfy {err.validator}={expected!r} (value hidden: secret field)"


def validate_config(schema: dict[str, Any], data: Any) -> tuple[Any, list[ConfigIssue]]:
    """``(data with defaults filled, issues)``; the config is valid when ``issues`` is empty."""
    if not isinstance(data, dict):
        return data, [ConfigIssue("$", f"must be a JSON object, not {type(data).__name__}", "type")]
    filled = fill_defaults(schema, data)
    return filled, list(_iter_issues(schema, filled))
