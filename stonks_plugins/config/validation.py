"""Validate a plugin config against its schema: fill defaults, refuse unknown keys, and
report every error with its JSON path and the rule it breaks — without ever echoing a
secret's value."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .. import jsonpath
from ..errors import ReasonCode, StonksPluginsError
from ..redaction import scrub_text
from .schema import (
    SchemaError,
    closed_registry,
    path_matches,
    secret_paths,
    unresolvable_refs,
)
from .secrets import secret_values_in

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str
    rule: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "rule": self.rule}

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.rule}]"


class ConfigInvalid(StonksPluginsError):
    """A config that does not match its schema; nothing was saved or applied."""

    code = ReasonCode.CONFIG_INVALID

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


def config_validator(schema: dict[str, Any]) -> Validator:
    """The one factory of validators for plugin config schemas (every caller goes through
    it). The validator resolves references only inside ``schema``: a ``$ref`` to
    ``http://...``, ``file://...`` or another document is a :class:`SchemaError` naming it,
    never a fetch or a read. Raises :class:`SchemaError` too for a schema that is not valid
    JSON Schema."""
    return _validator(json.dumps(schema, sort_keys=True))


@lru_cache(maxsize=128)
def _validator(canonical: str) -> Validator:
    # jsonschema (~50 ms with referencing and rpds) is imported by the first config checked,
    # not by every process at start-up (the admin imports this module).
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError as JsonSchemaError

    schema = json.loads(canonical)
    outside = unresolvable_refs(schema)
    if outside:
        shown = "; ".join(f"$ref {ref!r} at {where}" for ref, where in outside[:5])
        raise SchemaError(
            f"the config schema refers to what is not inside it ({shown}); only references "
            "inside the schema (#/$defs/..., #/definitions/...) are allowed: nothing is ever "
            "fetched or read from elsewhere"
        )
    try:
        Draft202012Validator.check_schema(schema)
    except JsonSchemaError as exc:
        raise SchemaError(
            f"the config schema is not valid JSON Schema at {exc.json_path}: {exc.message}"
        ) from None
    validator: Validator = Draft202012Validator(schema, registry=closed_registry())
    return validator


def _iter_issues(schema: dict[str, Any], validator: Validator, data: Any) -> Iterator[ConfigIssue]:
    patterns = list(secret_paths(schema))
    secrets = secret_values_in(data, patterns)
    for err in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = err.json_path
        rule = str(err.validator)
        if err.validator == "required" and isinstance(err.instance, dict):
            for key in err.validator_value:
                if key not in err.instance:
                    yield ConfigIssue(
                        jsonpath.child(path, key), "is required but missing", "required"
                    )
            continue
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = sorted(err.schema.get("properties") or {})
            for key in err.instance:
                if key not in allowed:
                    yield ConfigIssue(
                        jsonpath.child(path, key),
                        f"unknown key; expected one of: {', '.join(allowed) or '(none)'}",
                        "additionalProperties",
                    )
            continue
        concrete = tuple(err.absolute_path)
        secret = any(path_matches(p, concrete) for p in patterns)
        yield ConfigIssue(path, _message(err, secret, secrets), rule)


def _message(err: ValidationError, secret: bool, secrets: set[str]) -> str:
    if secret:
        # jsonschema's messages quote the value; for a secret say only what was expected.
        return (
            f"does not satisfy {err.validator}={err.validator_value!r} (value hidden: secret field)"
        )
    # A message about a whole object (oneOf, anyOf...) quotes it, secrets included.
    return scrub_text(err.message, secrets)


def validate_config(schema: dict[str, Any], data: Any) -> tuple[Any, list[ConfigIssue]]:
    """``(data with defaults filled, issues)``; the config is valid when ``issues`` is empty.
    A schema that cannot be used (a reference outside it, invalid JSON Schema) is one issue
    at ``$`` naming the problem: the config cannot be checked, so it is not accepted."""
    if not isinstance(data, dict):
        return data, [ConfigIssue("$", f"must be a JSON object, not {type(data).__name__}", "type")]
    try:
        validator = config_validator(schema)
    except SchemaError as exc:
        return data, [ConfigIssue("$", f"cannot be checked: {exc}", "schema")]
    filled = fill_defaults(schema, data)
    return filled, list(_iter_issues(schema, validator, filled))
