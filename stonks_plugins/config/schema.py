"""Where a plugin's config schema comes from, and which of its fields are secret.

A manifest may carry ``configuration.schema`` inline or as a file next to the manifest. A
manifest with only the seed's ``required_credentials`` / ``optional_settings`` gets a schema
generated in the seed's shape: ``{"credentials": {...}, "settings": {...}}``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..manifest.model import PluginManifest
from ..redaction import is_secret_key

Path_ = tuple[str, ...]


class SchemaError(Exception):
    """The plugin's config schema cannot be read; says where."""


def generated_schema(manifest: PluginManifest) -> dict[str, Any]:
    conf = manifest.configuration
    credentials: dict[str, Any] = {}
    for name in conf.required_credentials:
        field: dict[str, Any] = {"type": "string", "minLength": 1}
        if is_secret_key(name):
            field.update(writeOnly=True, format="password")
        credentials[name] = field
    settings = {
        name: {"description": f"optional setting '{name}'"} for name in conf.optional_settings
    }
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{manifest.display_name} configuration",
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }
    if credentials:
        schema["properties"]["credentials"] = {
            "type": "object",
            "properties": credentials,
            "required": list(conf.required_credentials),
            "additionalProperties": False,
        }
        schema["required"] = ["credentials"]
    if settings:
        schema["properties"]["settings"] = {
            "type": "object",
            "properties": settings,
            "additionalProperties": False,
        }
    return schema


def config_schema(manifest: PluginManifest, root: Path | None) -> dict[str, Any]:
    """The plugin's config schema, with every object closed to unknown keys unless it says
    otherwise."""
    source = manifest.configuration.schema
    if isinstance(source, dict):
        schema = copy.deepcopy(source)
    elif isinstance(source, str):
        if root is None:
            raise SchemaError(
                f"configuration.schema names the file {source!r} but the plugin "
                "has no folder to read it from"
            )
        path = (root / source).resolve()
        if root.resolve() not in path.parents:
            raise SchemaError(f"configuration.schema {source!r} points outside the plugin folder")
        try:
            schema = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemaError(f"configuration.schema file {path}: {exc}") from exc
        if not isinstance(schema, dict):
            raise SchemaError(f"configuration.schema file {path} must hold a JSON object")
    else:
        schema = generated_schema(manifest)
    return close_objects(schema)


def close_objects(schema: Any) -> Any:
    """Objects without an ``additionalProperties`` rule reject unknown keys: a typo in a key
    must be an error, not a silently ignored setting."""
    if isinstance(schema, dict):
        out = {k: close_objects(v) for k, v in schema.items()}
        is_object = out.get("type") == "object" or "properties" in out
        if is_object and "additionalProperties" not in out and "patternProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [close_objects(v) for v in schema]
    return schema


def is_secret(field: dict[str, Any], name: str = "") -> bool:
    return bool(
        field.get("writeOnly") or field.get("format") == "password" or field.get("x-secret")
    )


def secret_paths(schema: dict[str, Any], prefix: Path_ = ()) -> Iterator[Path_]:
    """Paths (key tuples) of every secret field, through nested objects."""
    for key, field in (schema.get("properties") or {}).items():
        if not isinstance(field, dict):
            continue
        if is_secret(field, key):
            yield (*prefix, key)
        elif field.get("type") == "object" or "properties" in field:
            yield from secret_paths(field, (*prefix, key))


def public_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as shown to users and forms: every secret marked ``writeOnly``."""
    out = copy.deepcopy(schema)
    for path in secret_paths(schema):
        node = out
        for key in path[:-1]:
            node = node["properties"][key]
        node["properties"][path[-1]]["writeOnly"] = True
    return out
