"""Schemathesis against the live schema: every operation, generated requests (valid and
invalid), sent through the Django WSGI app as a superuser with a token. No response may be a
server error or break the schema (status code, content type, body, headers).

The plugin folder holds a healthy plugin, a broken one and the bundled DeGiro plugin, and the
name parameter's examples point at them, so the actions run for real (enable, disable,
reload, health checks) as well as against names that do not exist.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from stonks_plugins.manager import manager

from .helpers import API

pytestmark = pytest.mark.django_db

TOKEN = "schemathesis-superuser-token-0123456789"  # DRF keys hold at most 40
AUTH = {"Authorization": f"Token {TOKEN}"}


@pytest.fixture
def api_schema(plugin_dirs, django_user_model) -> Any:  # type: ignore[no-untyped-def]
    for plugin in ("healthy-fixture", "import-error", "degiro-broker", "config-fixture"):
        plugin_dirs.add(plugin)
    manager.sync()
    user = django_user_model.objects.create_superuser("schemathesis", "st@x.io", None)
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


PLUGINS = ("healthy-fixture", "import-error", "degiro-broker", "config-fixture")
EXAMPLES = 12  # per operation, generation mode and kind of name


def test_api_conforms_to_its_schema(api_schema) -> None:  # type: ignore[no-untyped-def]
    sent: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    negative: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 17

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

            @given(case=st.one_of(strategies))
            @settings(
                max_examples=EXAMPLES * len(strategies),
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            def check(case: Any) -> None:
                response = case.call(headers=AUTH)
                sent[case.operation.label] += 1
                statuses[response.status_code] += 1
                assert response.status_code < 500, (case.as_curl_command(), response.text)
                # A write carries If-Match: any schema-valid ETag but the current one is
                # refused with 412 by design, which "valid data accepted" cannot know.
                excluded = (
                    [positive_data_acceptance] if "If-Match" in str(case.operation.headers) else []
                )
                case.validate_response(response, headers=AUTH, excluded_checks=excluded)

            check()
            if mode is GenerationMode.NEGATIVE:
                negative.append(operation.label)

    print(f"\nschemathesis: {len(operations)} operations, {sum(sent.values())} requests")
    print("by status:", dict(sorted(statuses.items())))
    print("with invalid requests too:", negative)
    assert all(sent[op.label] for op in operations)
    assert statuses[200] and statuses[404]
