"""Dependencies you can see, and a disable that asks before it breaks what needs it:
``dep-child`` needs ``dep-base`` (and, here, ``dep-grandchild`` needs ``dep-child``). The API
detail, ``plugins show`` and the console page show both directions; disabling ``dep-base``
while its dependents are enabled changes nothing and lists them - CLI exit 1, API 409
``has_dependents``, a console confirmation page - unless forced or confirmed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from stonks_plugins.manager import manager
from stonks_plugins.models import EventKind, Plugin, PluginEvent
from tests.cli import cli, cli_json

pytestmark = pytest.mark.django_db

API = "/api/v1/plugins"
ADMIN = "/admin/stonks_plugins/plugin/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def add_grandchild(base: Path) -> None:
    """``dep-grandchild``: a copy of dep-child that needs dep-child."""
    folder = base / "dep-grandchild"
    source = base / "dep-child"
    folder.mkdir()
    (folder / "depchild").mkdir()
    for name in ("__init__.py", "services.py"):
        (folder / "depchild" / name).write_text((source / "depchild" / name).read_text())
    manifest = json.loads((source / "plugin_manifest.json").read_text())
    manifest["plugin"].update(name="dep-grandchild", display_name="Dep Grandchild")
    manifest["dependencies"]["plugins"] = {"dep-child": ""}
    (folder / "plugin_manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def family(plugin_dirs) -> None:  # type: ignore[no-untyped-def]
    plugin_dirs.add("dep-base")
    plugin_dirs.add("dep-child")
    add_grandchild(plugin_dirs.path)
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    assert states() == {
        "dep-base": "active",
        "dep-child": "active",
        "dep-grandchild": "active",
        "healthy-fixture": "active",
    }


def states() -> dict[str, str]:
    return dict(Plugin.objects.values_list("name", "state"))


def disabled_events() -> int:
    return PluginEvent.objects.filter(kind=EventKind.ACTION, reason="disabled").count()


@pytest.fixture
def api(db, django_user_model) -> APIClient:  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user("olivia", "o@x.io", None)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="stonks_plugins", codename__in=["view_plugin", "change_plugin"]
        )
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def operator(client: Client, django_user_model) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@x.io", "pw"))
    return client


def test_api_detail_shows_what_a_plugin_needs_and_what_needs_it(family, api) -> None:
    child = api.get(f"{API}/dep-child/").json()
    assert child["depends_on"] == [
        {
            "name": "dep-base",
            "specifier": ">=1.0",
            "state": "active",
            "enabled": True,
            "version": "1.0.0",
        }
    ]
    assert [d["name"] for d in child["dependents"]] == ["dep-grandchild"]
    base = api.get(f"{API}/dep-base/").json()
    assert base["depends_on"] == []
    # Direct dependents only on the detail; what a disable would fail is the 409's list.
    assert [(d["name"], d["specifier"]) for d in base["dependents"]] == [("dep-child", ">=1.0")]
    assert "requires" not in base  # the model's restart/migrate field keeps its own name
    lone = api.get(f"{API}/healthy-fixture/").json()
    assert (lone["depends_on"], lone["dependents"]) == ([], [])


def test_api_disable_answers_409_listing_dependents_unless_forced(family, api) -> None:
    events = disabled_events()
    response = api.post(f"{API}/dep-base/disable/")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "has_dependents"
    assert error["dependents"] == ["dep-child", "dep-grandchild"]
    assert "dep-child" in error["message"] and "force" in error["message"]
    assert states()["dep-base"] == "active" and disabled_events() == events  # nothing changed

    for bad in ({"force": "yes"}, {"force": True, "colour": "red"}, [True]):
        refused = api.post(f"{API}/dep-base/disable/", bad, format="json")
        assert refused.status_code == 400, bad
    assert api.post(f"{API}/dep-base/disable/?force=maybe").status_code == 400
    assert states()["dep-base"] == "active"

    forced = api.post(f"{API}/dep-base/disable/", {"force": True}, format="json")
    assert forced.status_code == 200
    assert (forced.json()["state"], forced.json()["enabled"]) == ("disabled", False)
    assert states()["dep-child"] == "error"
    assert Plugin.objects.get(name="dep-child").error_code == "missing_dependency"


def test_api_disable_force_in_the_query_and_no_dependents_no_question(family, api) -> None:
    assert api.post(f"{API}/healthy-fixture/disable/").status_code == 200
    response = api.post(f"{API}/dep-child/disable/?force=true")
    assert response.status_code == 200
    assert states()["dep-child"] == "disabled"
    # Its own dependent is off now... and a plugin only disabled plugins need asks nothing.
    api.post(f"{API}/dep-grandchild/disable/?force=true")
    assert api.post(f"{API}/dep-child/disable/").status_code == 200  # already off


def test_cli_disable_exits_1_listing_dependents_unless_forced(family) -> None:
    code, out, err = cli("disable", "dep-base")
    assert code == 1
    assert "dep-child" in err and "dep-grandchild" in err and "--force" in err
    assert states()["dep-base"] == "active"

    code, shown = cli_json("disable", "dep-base")
    assert code == 1
    assert shown["code"] == "has_dependents"
    assert shown["dependents"] == ["dep-child", "dep-grandchild"]

    code, out, _ = cli("disable", "dep-base", "--force")
    assert code == 0 and "dep-base: disabled" in out
    assert states()["dep-child"] == "error"

    code, shown = cli_json("show", "dep-child")
    assert code == 0
    assert [(d["name"], d["state"], d["enabled"]) for d in shown["depends_on"]] == [
        ("dep-base", "disabled", False)
    ]
    assert [d["name"] for d in shown["dependents"]] == ["dep-grandchild"]
    _, text, _ = cli("show", "dep-child")
    assert "depends on:" in text and "dep-base >=1.0 [disabled]" in text
    assert "needed by:" in text and "dep-grandchild" in text


def _action(client: Client, action: str, *names: str, **extra: str) -> Any:
    pks = [str(Plugin.objects.get(name=n).pk) for n in names]
    return client.post(ADMIN, {"action": action, "_selected_action": pks, **extra})


def test_console_list_action_asks_before_disabling_a_needed_plugin(family, operator) -> None:
    page = _action(operator, "disable_plugins", "dep-base")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Disable plugins that others need?" in html
    assert 'data-dependent="dep-child"' in html and 'data-dependent="dep-grandchild"' in html
    assert 'name="post" value="yes"' in html and 'value="disable_plugins"' in html
    assert states()["dep-base"] == "active"  # asking changes nothing

    done = _action(operator, "disable_plugins", "dep-base", post="yes")
    assert done.status_code == 302
    assert states()["dep-base"] == "disabled" and states()["dep-child"] == "error"


def test_console_disabling_a_plugin_with_its_dependents_asks_nothing(family, operator) -> None:
    done = _action(
        operator, "disable_plugins", "dep-base", "dep-child", "dep-grandchild", "healthy-fixture"
    )
    assert done.status_code == 302
    assert set(states().values()) == {"disabled"}


def test_console_plugin_page_shows_dependencies_and_its_button_asks(family, operator) -> None:
    pk = Plugin.objects.get(name="dep-base").pk
    html = operator.get(f"{ADMIN}{pk}/change/").content.decode()
    assert 'id="dependencies"' in html and 'data-dependent="dep-child"' in html
    child_pk = Plugin.objects.get(name="dep-child").pk
    child_html = operator.get(f"{ADMIN}{child_pk}/change/").content.decode()
    assert 'data-depends-on="dep-base"' in child_html

    url = f"{ADMIN}{pk}/do/disable/"
    page = operator.post(url)
    assert page.status_code == 200
    assert 'data-dependent="dep-child"' in page.content.decode()
    assert states()["dep-base"] == "active"
    done = operator.post(url, {"post": "yes"})
    assert done.status_code == 302 and done["Location"].endswith(f"{pk}/change/")
    assert states()["dep-base"] == "disabled"
