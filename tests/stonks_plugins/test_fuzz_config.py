"""Property-based tests (Hypothesis) of config validation and redaction, against a few
schemas (flat, nested with secrets in arrays, ``$ref`` and combinators, a map of secrets, a
recursive one, and one that is not valid JSON Schema):

- ``validate_config`` takes any JSON at all and answers with issues (each with a JSON path
  and a rule), never an exception;
- secret values put into the data never show: not in an issue, not in the masked config,
  not in the stored (encrypted) config;
- the masked config sent back keeps every stored secret (``keep_masked``), and what is
  stored decrypts to what was sent.

Secret values are drawn from an alphabet no other generated text uses, so finding one in an
output can only be a leak. Derandomized with no example database: CI runs the same examples.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stonks_plugins.config import secrets
from stonks_plugins.config.schema import close_objects, secret_paths
from stonks_plugins.config.validation import ConfigIssue, validate_config

FUZZ = settings(
    max_examples=80,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

FLAT = close_objects(
    {
        "type": "object",
        "properties": {
            "user": {"type": "string", "minLength": 1},
            "password": {"type": "string", "minLength": 8, "writeOnly": True},
            "api_token": {"type": "string"},  # secret by its name
            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 443},
            "mode": {"enum": ["live", "demo"], "default": "demo"},
        },
        "required": ["user", "password"],
    }
)
NESTED = close_objects(
    {
        "$defs": {"session_token": {"type": "string", "minLength": 4, "writeOnly": True}},
        "type": "object",
        "properties": {
            "accounts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                    },
                    "required": ["id"],
                },
            },
            "session": {"$ref": "#/$defs/session_token"},
            "auth": {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {
                            "method": {"const": "key"},
                            "key_value": {"type": "string", "writeOnly": True},
                        },
                        "required": ["method", "key_value"],
                    },
                    {
                        "type": "object",
                        "properties": {"method": {"const": "none"}},
                        "required": ["method"],
                    },
                ]
            },
            "login": {
                "type": "object",
                "allOf": [
                    {"properties": {"user": {"type": "string"}}},
                    {"properties": {"word": {"type": "string", "writeOnly": True}}},
                ],
            },
            "region": {"type": "string", "default": "eu"},
        },
    }
)
MAP = close_objects(
    {
        "type": "object",
        "properties": {
            "tokens": {
                "type": "object",
                "additionalProperties": {"type": "string", "x-secret": True},
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
)
TREE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "label": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/node",
}
BROKEN = {"type": "object", "properties": {"x": {"type": 5}}}

# -- strategies ----------------------------------------------------------------------------
_SECRET_ALPHABET = "ⓢⓔⓒⓡⓣ"  # in no other generated text (see _text); secrets start with ⓢ
_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00" + _SECRET_ALPHABET),
    max_size=20,
)
_json: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=10,
)
_token = st.text(alphabet=_SECRET_ALPHABET + "0123456789", min_size=10, max_size=24).map(
    lambda t: "ⓢ" + t
)
# A secret field may hold what its schema does not expect: it stays secret all the same.
_secret = st.one_of(
    _token, _token, st.lists(_token, min_size=1, max_size=2), st.builds(lambda t: {"v": t}, _token)
)


def _with_extras(shaped: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """Data shaped like the schema (secrets where it has them), with stray keys and values
    of any type mixed in, or any JSON at all."""
    mixed = st.builds(
        lambda base, extra: {**extra, **base}, shaped, st.dictionaries(_text, _json, max_size=2)
    )
    return st.one_of(mixed, mixed, _json)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


flat_data = _with_extras(
    _optional(
        user=st.one_of(_text, _json),
        password=_secret,
        api_token=_secret,
        port=st.one_of(st.integers(-5, 70000), _json),
        mode=st.one_of(st.sampled_from(["live", "demo", "prod"]), _json),
    )
)
nested_data = _with_extras(
    _optional(
        accounts=st.lists(
            st.one_of(_optional(id=st.one_of(_text, _json), password=_secret), _json), max_size=3
        ),
        session=_secret,
        auth=st.one_of(
            st.fixed_dictionaries({"method": st.just("key"), "key_value": _secret}),
            st.fixed_dictionaries({"method": st.sampled_from(["none", "other"])}),
        ),
        login=_optional(user=_text, word=_secret),
        region=st.one_of(_text, _json),
    )
)
map_data = _with_extras(
    _optional(
        tokens=st.dictionaries(_text, _secret, max_size=3),
        labels=st.dictionaries(_text, st.one_of(_text, _json), max_size=3),
    )
)
tree_data = _with_extras(
    st.recursive(
        _optional(label=st.one_of(_text, _json)),
        lambda inner: _optional(label=_text, children=st.lists(inner, max_size=3)),
        max_leaves=8,
    )
)


# -- properties ----------------------------------------------------------------------------
def _leaks(value: Any) -> bool:
    """Whether a secret value (all of them start with the one character no other generated
    text holds) shows anywhere in ``value``."""
    return "ⓢ" in json.dumps(value, ensure_ascii=False)


def _check_validation(schema: dict[str, Any], data: Any) -> tuple[Any, list[ConfigIssue]]:
    filled, issues = validate_config(schema, data)
    assert isinstance(issues, list)
    for issue in issues:
        assert isinstance(issue, ConfigIssue)
        assert issue.path.startswith("$") and issue.rule and issue.message, issue
    assert not _leaks([i.as_dict() for i in issues]), issues
    return filled, issues


def _check_redaction(schema: dict[str, Any], data: Any) -> None:
    filled, issues = _check_validation(schema, data)
    if not isinstance(filled, dict):
        assert issues and issues[0].path == "$"
        return
    paths = list(secret_paths(schema))
    event("secrets in the data" if _leaks(filled) else "no secret in the data")
    event("valid" if not issues else "invalid")
    masked = secrets.mask(filled, paths)
    assert not _leaks(masked), masked
    stored = secrets.encrypt(filled, paths)
    assert not _leaks(stored), stored
    assert secrets.decrypt(stored, paths) == filled
    # The masked form sent back (a form or a dashboard saving what it read) keeps every
    # stored secret; what is stored decrypts to what was sent first.
    back = secrets.keep_masked(masked, filled, paths)
    assert back == filled
    assert secrets.decrypt(
        secrets.keep_masked(secrets.mask(stored, paths), stored, paths), paths
    ) == (filled)


@FUZZ
@given(data=flat_data)
def test_flat_schema(data: Any) -> None:
    _check_redaction(FLAT, data)


@FUZZ
@given(data=nested_data)
def test_secrets_in_arrays_refs_and_combinators(data: Any) -> None:
    _check_redaction(NESTED, data)


@FUZZ
@given(data=map_data)
def test_a_map_of_secrets(data: Any) -> None:
    _check_redaction(MAP, data)


@FUZZ
@given(data=tree_data)
def test_a_recursive_schema(data: Any) -> None:
    _check_validation(TREE, data)


@settings(FUZZ, max_examples=20)
@given(data=_json)
def test_a_schema_that_is_not_json_schema_is_one_issue(data: Any) -> None:
    _, issues = _check_validation(BROKEN, data)
    assert len(issues) == 1 and issues[0].path == "$"
    assert issues[0].rule in ("schema", "type")
