"""The OpenAPI schema is valid and says what the API does, so a generated client works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command

from .helpers import API

pytestmark = pytest.mark.django_db

# Every operation of the API; the config endpoints are added here when they land.
OPERATIONS = {
    ("get", "/api/v1/health/"),
    ("get", "/api/v1/plugins/"),
    ("get", "/api/v1/plugins/{name}/"),
    ("post", "/api/v1/plugins/{name}/enable/"),
    ("post", "/api/v1/plugins/{name}/disable/"),
    ("post", "/api/v1/plugins/{name}/reload/"),
    ("get", "/api/v1/plugins/{name}/health/"),
    ("post", "/api/v1/plugins/{name}/health/"),
    ("get", "/api/v1/plugins/{name}/metrics/"),
    ("get", "/api/v1/plugins/{name}/events/"),
    ("get", "/api/v1/plugins/{name}/imports/"),
    ("get", "/api/v1/plugins/{name}/logs/"),
    ("post", "/api/v1/plugins/sync/"),
    ("get", "/api/v1/plugins/{name}/config/"),
    ("put", "/api/v1/plugins/{name}/config/"),
    ("patch", "/api/v1/plugins/{name}/config/"),
    ("get", "/api/v1/plugins/{name}/config/schema/"),
    ("get", "/api/v1/plugins/{name}/config/history/"),
    ("post", "/api/v1/plugins/{name}/config/rollback/"),
    ("post", "/api/v1/plugins/install/"),
    ("post", "/api/v1/plugins/{name}/uninstall/"),
    ("post", "/api/v1/plugins/{name}/purge/"),
    ("get", "/api/v1/plugins/{name}/instances/"),
    ("post", "/api/v1/plugins/{name}/instances/"),
    ("delete", "/api/v1/plugins/{name}/instances/{label}/"),
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path: Path = tmp_path_factory.mktemp("schema") / "openapi.yaml"
    # --validate checks it against the OpenAPI 3 meta-schema; any warning fails.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]


def operations(schema: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): op
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_schema_is_valid_openapi_3_and_lists_every_operation(schema) -> None:
    assert schema["openapi"].startswith("3.")
    assert set(operations(schema)) == OPERATIONS


def test_every_error_response_is_declared_with_the_error_shape(schema) -> None:
    for (method, path), op in operations(schema).items():
        responses = op["responses"]
        codes = set(responses)
        if path == "/api/v1/health/":
            assert codes == {"200", "503"} and op.get("security", [{}]) == [{}]  # no login
            continue
        assert {"200", "401", "403"} <= codes, (method, path)
        assert op["security"] == [{"tokenAuth": []}, {"cookieAuth": []}]
        if "{name}" in path:
            assert "404" in codes, (method, path)
        if path.endswith(("/enable/", "/disable/", "/reload/")):
            assert "409" in codes
        if any(p["in"] == "query" for p in op.get("parameters", [])):
            assert "400" in codes, (method, path)
        for code, response in responses.items():
            if code >= "400" and code != "503":
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (method, path, code)


def test_schema_served_matches_the_generated_one(anon, schema) -> None:
    served = yaml.safe_load(anon.get(f"{API}/schema/").content)
    assert served == schema
    as_json = anon.get(f"{API}/schema/?format=json")
    assert as_json.status_code == 200 and as_json.json()["paths"].keys() == schema["paths"].keys()


def test_error_component_is_the_one_shape(schema) -> None:
    components = schema["components"]["schemas"]
    assert components["Error"]["required"] == ["error"]
    assert components["ErrorBody"]["required"] == ["code", "details", "message"]
    assert set(components["ErrorDetailItem"]["properties"]) == {
        "path",
        "message",
        "code",
        "location",
    }
    plugin = components["Plugin"]
    assert {"name", "version", "type", "source", "state", "enabled", "error"} <= set(
        plugin["required"]
    )
    assert components["PluginStateEnum"]["enum"] == [
        "discovered",
        "loading",
        "loaded",
        "active",
        "error",
        "disabled",
        "unloading",
    ]
