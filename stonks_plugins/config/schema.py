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
from typing import TYPE_CHECKING, Any

from .. import jsonpath
from ..errors import StonksPluginsError
from ..manifest.model import PluginManifest
from ..redaction import is_secret_key

if TYPE_CHECKING:
    from referencing import Registry, Resource
    from referencing._core import Resolver

# referencing (with jsonschema's stack, ~50 ms) is imported where a schema's references are
# followed, not here: the admin imports this module at every start-up, safe mode included.
# Code that catches ``Unresolvable`` got its resolver from ``resolver_for``, so by then the
# import is done and the local one is a dictionary lookup.

Path_ = tuple[str, ...]


class SchemaError(StonksPluginsError):
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
        # A stranger's file: a FIFO would hang every page that needs the schema, a huge one
        # slow them all; only a regular file within PLUGINS_MAX_SCHEMA_BYTES is read.
        from ..plugin_files import SCHEMA_SETTING, describe, read_plugin_file, schema_limit

        where = f"configuration.schema file {path}"
        try:
            data = read_plugin_file(
                path, schema_limit(), follow_symlinks=False, setting=SCHEMA_SETTING
            )
        except OSError as exc:
            raise SchemaError(f"{where} {describe(exc)}") from exc
        try:
            schema = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise SchemaError(f"{where}: {exc}") from exc
        if not isinstance(schema, dict):
            raise SchemaError(f"configuration.schema file {path} must hold a JSON object")
    else:
        schema = generated_schema(manifest)
    return close_objects(schema)


_COMPOSED = ("allOf", "anyOf", "oneOf", "$ref", "$dynamicRef", "if", "dependentSchemas")


def close_objects(schema: Any, *, branch: bool = False) -> Any:
    """Objects without an ``additionalProperties`` rule reject unknown keys: a typo in a key
    must be an error, not a silently ignored setting.

    An object composed of other schemas (``allOf``, ``$ref``...) is closed with
    ``unevaluatedProperties``, which sees the keys its parts declare; an ``allOf`` branch is
    a part, not a whole, and is left open."""
    if isinstance(schema, dict):
        out = {
            k: (
                [close_objects(b, branch=True) for b in v]
                if k == "allOf" and isinstance(v, list)
                else close_objects(v)
            )
            for k, v in schema.items()
        }
        is_object = out.get("type") == "object" or "properties" in out
        open_rules = ("additionalProperties", "patternProperties", "unevaluatedProperties")
        if is_object and not branch and not any(k in out for k in open_rules):
            composed = any(k in out for k in _COMPOSED)
            out["unevaluatedProperties" if composed else "additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [close_objects(v) for v in schema]
    return schema


# -- secret fields ---------------------------------------------------------------------------
ITEM = jsonpath.ALL_ITEMS
"""Path step: every item of an array."""
ANY_KEY = jsonpath.ALL_KEYS
"""Path step: every key of an object whose other keys are described by one schema
(``additionalProperties``, ``patternProperties``)."""
_MAX_REF_HOPS = 32


def _refuse(uri: str) -> Resource[Any]:
    # A config schema is the plugin's own document: nothing outside it is ever fetched or
    # read (no network, no file), whatever a $ref says.
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs class


def closed_registry() -> Registry[Any]:
    """A registry that retrieves nothing: with it, only references inside the schema being
    validated resolve (``#/$defs/...``, ``#/definitions/...``, anchors, embedded ``$id``)."""
    from referencing import Registry

    return Registry(retrieve=_refuse)  # type: ignore[call-arg]  # an attrs class


def resolver_for(schema: dict[str, Any]) -> Resolver[Any]:
    """A resolver for the references of ``schema`` that resolves only inside it."""
    from referencing.jsonschema import DRAFT202012

    return closed_registry().resolver_with_root(DRAFT202012.create_resource(schema))


def _enter(node: dict[str, Any], resolver: Resolver[Any]) -> Resolver[Any]:
    if "$id" not in node:
        return resolver
    from referencing.jsonschema import DRAFT202012

    return resolver.in_subresource(DRAFT202012.create_resource(node))


def unresolvable_refs(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """``(ref, where)`` for every ``$ref`` / ``$dynamicRef`` of ``schema`` that does not
    point inside it; ``where`` is the JSON pointer of the reference."""
    out: list[tuple[str, str]] = []
    _find_refs(schema, resolver_for(schema), "#", out)
    return out


def _find_refs(node: Any, resolver: Resolver[Any], where: str, out: list[tuple[str, str]]) -> None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            _find_refs(item, resolver, f"{where}/{i}", out)
        return
    if not isinstance(node, dict):
        return
    resolver = _enter(node, resolver)
    for key, value in node.items():
        here = f"{where}/{key.replace('~', '~0').replace('/', '~1')}"
        if key in ("$ref", "$dynamicRef") and isinstance(value, str):
            from referencing.exceptions import Unresolvable

            try:
                resolver.lookup(value)
            except Unresolvable:
                out.append((value, here))
        elif key in _VALUE_KEYWORDS:
            continue  # data, not schemas: a "$ref" key in a default is just a key
        else:
            _find_refs(value, resolver, here, out)


_VALUE_KEYWORDS = frozenset({"const", "enum", "default", "examples", "example"})


def is_secret(field: dict[str, Any], name: str = "") -> bool:
    """A field whose value is a secret: marked ``writeOnly``, ``format: password`` or
    ``x-secret``, or named like one (``password``, ``api_token``: see
    :func:`~stonks_plugins.redaction.is_secret_key`) unless it is a section of named fields
    (``credentials``), whose own fields are looked at instead."""
    if field.get("writeOnly") or field.get("format") == "password" or field.get("x-secret"):
        return True
    return bool(name) and is_secret_key(name) and not _is_section(field)


def _is_section(field: dict[str, Any], resolver: Resolver[Any] | None = None) -> bool:
    """An object of named fields, possibly composed of branches that declare them."""
    if isinstance(field.get("properties"), dict) and field["properties"]:
        return True
    for key in ("allOf", "anyOf", "oneOf"):
        branches = field.get(key)
        if isinstance(branches, list):
            for branch in branches:
                if isinstance(branch, dict):
                    target = _deref(branch, resolver) if resolver is not None else branch
                    if isinstance(target.get("properties"), dict) and target["properties"]:
                        return True
    return False


def _secret_field(field: dict[str, Any], key: str, resolver: Resolver[Any]) -> bool:
    """``is_secret`` for a property whose schema may be a reference."""
    if is_secret(field):
        return True
    target = _deref(field, resolver)
    if target is not field and is_secret(target):
        return True
    return is_secret_key(key) and not _is_section(target, resolver)


def secret_paths(schema: dict[str, Any], prefix: Path_ = ()) -> Iterator[Path_]:
    """Paths (key tuples) of every secret field: through nested objects, array items
    (:data:`ITEM`), maps (:data:`ANY_KEY`), local references (``$ref``) and the branches of
    ``allOf`` / ``anyOf`` / ``oneOf`` / ``if``. A value whose schema cannot be known - a
    reference that does not resolve inside the schema, or a recursive one that holds
    secrets - is a secret as a whole. No path is inside another."""
    found: list[Path_] = []
    for path in _walk(schema, prefix, resolver_for(schema), frozenset(), stop_on_cycle=False):
        if path not in found:
            found.append(path)
    for path in found:
        if not any(other != path and path[: len(other)] == other for other in found):
            yield path


def _walk(
    node: Any,
    prefix: Path_,
    resolver: Resolver[Any],
    seen: frozenset[int],
    *,
    stop_on_cycle: bool,
) -> Iterator[Path_]:
    if not isinstance(node, dict):
        return
    resolver = _enter(node, resolver)
    if prefix and is_secret(node):
        yield prefix
        return
    for ref_key in ("$ref", "$dynamicRef"):
        ref = node.get(ref_key)
        if not isinstance(ref, str):
            continue
        from referencing.exceptions import Unresolvable

        try:
            resolved = resolver.lookup(ref)
        except Unresolvable:
            if prefix:
                yield prefix  # unknown: the cheaper mistake is to keep it secret
            continue
        target = resolved.contents
        if id(target) in seen or len(seen) > _MAX_REF_HOPS:
            # A recursive schema: its secrets repeat at every depth; keep the whole value
            # secret when there are any, rather than walk for ever.
            if not stop_on_cycle and prefix and _holds_secret(target, resolved.resolver, seen):
                yield prefix
            continue
        yield from _walk(
            target, prefix, resolved.resolver, seen | {id(target)}, stop_on_cycle=stop_on_cycle
        )
    props = node.get("properties")
    if isinstance(props, dict):
        for key, field in props.items():
            if not isinstance(field, dict):
                continue
            child = (*prefix, key)
            if _secret_field(field, key, resolver):
                yield child
            else:
                yield from _walk(field, child, resolver, seen, stop_on_cycle=stop_on_cycle)
    for key, step in (
        ("items", ITEM),
        ("contains", ITEM),
        ("additionalProperties", ANY_KEY),
        ("unevaluatedProperties", ANY_KEY),
        ("unevaluatedItems", ITEM),
    ):
        sub = node.get(key)
        if isinstance(sub, dict):
            yield from _walk(sub, (*prefix, step), resolver, seen, stop_on_cycle=stop_on_cycle)
    for key in ("prefixItems", "allOf", "anyOf", "oneOf"):
        subs = node.get(key)
        if isinstance(subs, list):
            at = (*prefix, ITEM) if key == "prefixItems" else prefix
            for sub in subs:
                yield from _walk(sub, at, resolver, seen, stop_on_cycle=stop_on_cycle)
    for key in ("then", "else"):
        yield from _walk(node.get(key), prefix, resolver, seen, stop_on_cycle=stop_on_cycle)
    for group, at in (("dependentSchemas", prefix), ("patternProperties", (*prefix, ANY_KEY))):
        subs = node.get(group)
        if isinstance(subs, dict):
            for sub in subs.values():
                yield from _walk(sub, at, resolver, seen, stop_on_cycle=stop_on_cycle)


def _holds_secret(target: Any, resolver: Resolver[Any], seen: frozenset[int]) -> bool:
    return any(_walk(target, ("_",), resolver, seen, stop_on_cycle=True))


def _deref(field: dict[str, Any], resolver: Resolver[Any]) -> dict[str, Any]:
    """``field``, or what its local ``$ref`` chain points to (as far as it resolves)."""
    for _ in range(_MAX_REF_HOPS):
        ref = field.get("$ref")
        if not isinstance(ref, str) or _is_section(field):
            return field
        from referencing.exceptions import Unresolvable

        try:
            resolved = resolver.lookup(ref)
        except Unresolvable:
            return field
        if not isinstance(resolved.contents, dict):
            return field
        field, resolver = resolved.contents, resolved.resolver
    return field


def path_matches(pattern: Path_, concrete: tuple[str | int, ...]) -> bool:
    """Whether a concrete data path (list indexes as ints) is ``pattern`` or inside it."""
    if len(concrete) < len(pattern):
        return False
    for step, key in zip(pattern, concrete, strict=False):
        if step == ITEM:
            if not isinstance(key, int):
                return False
        elif step == ANY_KEY:
            if not isinstance(key, str):
                return False
        elif step != key:
            return False
    return True


def json_path(path: tuple[str | int, ...]) -> str:
    """``$.accounts[*].password`` / ``$.accounts[0].password``."""
    return jsonpath.join(path)


def public_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as shown to users and forms: every secret field marked ``writeOnly``,
    wherever it is declared (in ``$defs``, array items, combinators)."""
    return _mark_secrets(copy.deepcopy(schema), resolver_for(schema))


def _mark_secrets(node: Any, resolver: Resolver[Any]) -> Any:
    if isinstance(node, list):
        return [_mark_secrets(item, resolver) for item in node]
    if not isinstance(node, dict):
        return node
    resolver = _enter(node, resolver)
    props = node.get("properties")
    if isinstance(props, dict):
        for key, field in props.items():
            if isinstance(field, dict) and _secret_field(field, key, resolver):
                field["writeOnly"] = True
    for key, value in node.items():
        if key not in _VALUE_KEYWORDS and isinstance(value, dict | list):
            node[key] = _mark_secrets(value, resolver)
    return node
