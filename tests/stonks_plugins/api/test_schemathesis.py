"""Schemathesis against the live schema: every operation, generated requests (valid and
invalid), sent through the Django WSGI app as an operator (view and change permission, not a
superuser) with a token. No response may be a server error or break the schema (status code,
content type, body, headers).

The plugin folder holds a healthy plugin, a broken one, the bundled DeGiro plugin and the
config fixture, and the name parameter's examples point at them, so the actions run for real
(enable, disable, reload, health checks) as well as against names that do not exist. A write
is sent with the config's current ETag half the time, so generated configs reach validation
and storage instead of stopping at 412.

Then every operation (and OPTIONS on every path) gets hostile requests of our own: bodies too
large, too deep, with numbers that are not finite, lone surrogates, NUL characters, bytes that
are not UTF-8, the wrong media type; hostile query parameters and plugin names. Each must be
a 4xx in the error shape: zero server errors.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from stonks_plugins.manager import manager

from .helpers import API

pytestmark = pytest.mark.django_db

TOKEN = "schemathesis-operator-token-0123456789"  # DRF keys hold at most 40
AUTH = {"Authorization": f"Token {TOKEN}"}
PLUGINS = ("healthy-fixture", "import-error", "degiro-broker", "config-fixture")
EXAMPLES = 12  # per operation, generation mode and kind of name
OPERATIONS = 25


@pytest.fixture
def api_schema(plugin_dirs, django_user_model) -> Any:  # type: ignore[no-untyped-def]
    for plugin in PLUGINS:
        plugin_dirs.add(plugin)
    manager.sync()
    user = django_user_model.objects.create_user("operator", "op@x.io", None)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="stonks_plugins", codename__in=["view_plugin", "change_plugin"]
        )
    )
    Token.objects.create(user=user, key=TOKEN)
    # The real WSGI handler closes the database connection around each request; inside the
    # test's transaction that would drop it (Django's own test client disconnects this too).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi(f"{API}/schema/?format=json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _current_etag(name: str) -> str:
    return manager.get_config(name).etag


def test_api_conforms_to_its_schema(api_schema) -> None:  # type: ignore[no-untyped-def]
    sent: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    negative: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == OPERATIONS

    for operation in operations:
        # Invalid requests need something that can be invalid: a query parameter or a body (a
        # path parameter here is any string). Elsewhere only valid requests exist.
        can_be_invalid = bool(operation.query) or bool(operation.body)
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if can_be_invalid else [])
        for mode in modes:
            strategies = [operation.as_strategy(generation_mode=mode)]
            if "{name}" in operation.path:
                strategies += [
                    operation.as_strategy(generation_mode=mode, path_parameters={"name": n})
                    for n in PLUGINS
                ]

            @given(case=st.one_of(strategies), fresh=st.booleans())
            @settings(
                max_examples=EXAMPLES * len(strategies),
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            def check(case: Any, fresh: bool) -> None:
                writes = "If-Match" in str(case.operation.headers)
                headers = dict(AUTH)
                name = (case.path_parameters or {}).get("name")
                if writes and fresh and name in PLUGINS:
                    headers["If-Match"] = _current_etag(name)
                response = case.call(headers=headers)
                sent[case.operation.label] += 1
                statuses[response.status_code] += 1
                assert response.status_code < 500, (case.as_curl_command(), response.text)
                # A write carries If-Match: any schema-valid ETag but the current one is
                # refused with 412 by design, and a config valid by the OpenAPI (any object)
                # may not fit the plugin's own schema: "valid data accepted" cannot know.
                excluded = [positive_data_acceptance] if writes else []
                case.validate_response(response, headers=headers, excluded_checks=excluded)

            check()
            if mode is GenerationMode.NEGATIVE:
                negative.append(operation.label)

    print(f"\nschemathesis: {len(operations)} operations, {sum(sent.values())} requests")
    print("by status:", dict(sorted(statuses.items())))
    print("with invalid requests too:", negative)
    assert all(sent[op.label] for op in operations)
    assert statuses[200] and statuses[404] and statuses[400]


def _nested(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


# Bodies no generator produces: (label, raw bytes, content type).
HOSTILE_BODIES: list[tuple[str, bytes, str]] = [
    ("arrays 100k deep", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("objects 900 deep", _nested(900), "application/json"),
    ("1e400", b'{"version": 1e400, "settings": {"refresh_minutes": 1e400}}', "application/json"),
    ("NaN", b'{"version": NaN}', "application/json"),
    ("huge integer", b'{"version": ' + b"9" * 5000 + b"}", "application/json"),
    ("long integer", b'{"version": ' + b"9" * 40 + b"}", "application/json"),
    ("lone surrogate", b'{"credentials": {"username": "\\ud800"}}', "application/json"),
    ("surrogate key", b'{"\\udfff": 1}', "application/json"),
    ("NUL value", b'{"credentials": {"username": "a\\u0000"}}', "application/json"),
    ("NUL key", b'{"settings\\u0000": {}}', "application/json"),
    ("not UTF-8", b'{"credentials": {"username": "\xff\xfe\xfd"}}', "application/json"),
    ("truncated", b'{"credentials": ', "application/json"),
    ("a list", b"[1, 2, 3]", "application/json"),
    ("a string", b'"config"', "application/json"),
    ("null", b"null", "application/json"),
    ("empty object", b"{}", "application/json"),
    ("form", b"version=1&credentials=x", "application/x-www-form-urlencoded"),
    ("multipart", b"--x\r\nContent-Disposition: form-data\r\n\r\n\r\n--x--", "multipart/form-data"),
    ("text", b"\x00\x01\x02", "text/plain"),
]
HOSTILE_QUERIES: list[dict[str, str]] = [
    {"search": " ".join(f"w{i}" for i in range(5000))},
    {"search": "a\x00b"},
    {"ordering": ",".join(["name", "-state"] * 2500)},
    {"page": "\x00"},
    {"page": "9" * 400},
    {"limit": "1e400"},
    {"limit": "9" * 400},
    {"kind": "\x00"},
    {"state": "\ud800"},
    {"enabled": "\x00"},
]
HOSTILE_NAMES = ("x\x00y", "%00", "config-fixture\x00", "a" * 2000, "..", "%ff%fe")


def _assert_error_shape(response: Any, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.content[:500])
    if response.status_code >= 400 and response["Content-Type"] == "application/json":
        body = response.json()
        assert set(body) == {"error"} and body["error"]["code"], (what, body)


def test_every_operation_survives_hostile_requests(api_schema, settings) -> None:  # type: ignore[no-untyped-def]
    """Hostile bodies, queries and names on every operation (writes with the current ETag, so
    the body reaches the config), and OPTIONS on every path: no 5xx, errors in the shape."""
    client = Client(HTTP_AUTHORIZATION=AUTH["Authorization"])
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == OPERATIONS
    statuses: Counter[int] = Counter()
    huge = b'{"padding": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}'
    for operation in operations:
        method = operation.method.upper()
        names = [*PLUGINS, *HOSTILE_NAMES] if "{name}" in operation.path else [""]
        for name in names:
            path = operation.path.replace("{name}", name)
            headers: dict[str, str] = {}
            if name in PLUGINS:
                headers["HTTP_IF_MATCH"] = _current_etag(name)
            # Bodies where a body may be read; queries where they are (GETs).
            bodies: list[tuple[str, bytes, str]] = []
            if method != "GET":
                # An action takes no body: a few show it is not read (nor a 500).
                reads = bool(operation.body) and (name in PLUGINS or not name)
                bodies = HOSTILE_BODIES if reads else HOSTILE_BODIES[:1]
                if name == PLUGINS[-1] or not name:
                    bodies = [*bodies, ("huge", huge, "application/json")]
            for label, raw, content_type in bodies:
                response = client.generic(method, path, raw, content_type, **headers)
                statuses[response.status_code] += 1
                _assert_error_shape(response, f"{method} {path} with {label}")
            for query in HOSTILE_QUERIES if method == "GET" else []:
                response = client.generic(method, path, b"", QUERY_STRING=_encode(query))
                statuses[response.status_code] += 1
                _assert_error_shape(response, f"{method} {path}?{query!r:.60}")
            response = client.options(path)
            statuses[response.status_code] += 1
            _assert_error_shape(response, f"OPTIONS {path}")
    print(
        f"\nhostile: {sum(statuses.values())} requests, by status: {dict(sorted(statuses.items()))}"
    )
    assert statuses[413] and statuses[400] and statuses[404]


def _encode(query: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(query, encoding="utf-8", errors="surrogatepass")
