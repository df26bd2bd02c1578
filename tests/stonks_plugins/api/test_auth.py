"""Who may do what: anonymous gets 401, a reader reads everything and changes nothing, an
operator with the change permission acts; token and session logins both work."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from stonks_plugins.models import Plugin, PluginEvent

from .helpers import API, error_of, plugin_row

pytestmark = pytest.mark.django_db

READS = [
    f"{API}/plugins/",
    f"{API}/plugins/?state=active",
    f"{API}/plugins/p1/",
    f"{API}/plugins/p1/health/",
    f"{API}/plugins/p1/metrics/",
    f"{API}/plugins/p1/events/",
]
CHANGES = [
    f"{API}/plugins/p1/enable/",
    f"{API}/plugins/p1/disable/",
    f"{API}/plugins/p1/reload/",
    f"{API}/plugins/p1/health/",
    f"{API}/plugins/sync/",
]


@pytest.fixture
def p1(rows):  # type: ignore[no-untyped-def]
    return rows(plugin_row("p1"))[0]


@pytest.mark.parametrize("url", READS + CHANGES)
def test_anonymous_gets_401_with_a_www_authenticate_header(anon, p1, url: str) -> None:
    method = anon.post if url in CHANGES and not url.endswith("health/") else anon.get
    response = method(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert error_of(response)["code"] == "not_authenticated"


def test_a_bad_token_is_401_authentication_failed(p1) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get(f"{API}/plugins/")
    assert response.status_code == 401
    assert error_of(response)["code"] == "authentication_failed"


@pytest.mark.parametrize("url", READS)
def test_reader_reads_everything(reader, p1, url: str) -> None:
    assert reader.get(url).status_code == 200


@pytest.mark.parametrize("url", CHANGES)
def test_reader_gets_403_on_every_change_and_nothing_changes(reader, p1, url: str) -> None:
    before = list(Plugin.objects.values())
    response = reader.post(url)
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "permission_denied"
    assert "stonks_plugins.change_plugin" in error["message"]
    assert list(Plugin.objects.values()) == before
    assert not PluginEvent.objects.exists()


@pytest.mark.parametrize("url", READS)
def test_a_user_without_view_permission_reads_nothing(make_client, p1, url: str) -> None:
    nobody = make_client("nobody")
    response = nobody.get(url)
    assert response.status_code == 403
    assert "stonks_plugins.view_plugin" in error_of(response)["message"]


def test_change_permission_implies_view_as_in_the_admin(make_client, p1) -> None:
    writer = make_client("writer", "change_plugin")
    assert writer.get(f"{API}/plugins/p1/").status_code == 200


def test_operator_may_change(operator, p1) -> None:
    response = operator.post(f"{API}/plugins/p1/disable/")
    assert response.status_code == 200
    assert PluginEvent.objects.filter(actor="olivia", reason="disabled").exists()


def test_permissions_through_a_group(make_client, django_user_model, p1) -> None:
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.create(name="operators")
    group.permissions.add(*Permission.objects.filter(codename__in=["view_plugin", "change_plugin"]))
    client = make_client("grace")
    client.user.groups.add(group)
    assert client.post(f"{API}/plugins/p1/disable/").status_code == 200


def test_a_permission_taken_away_counts_at_the_next_request(make_client, p1) -> None:
    from django.contrib.auth.models import Group, Permission

    view = Permission.objects.get(codename="view_plugin")
    client = make_client("rita", "view_plugin")
    assert client.get(f"{API}/plugins/").status_code == 200
    client.user.user_permissions.remove(view)
    assert client.get(f"{API}/plugins/").status_code == 403
    group = Group.objects.create(name="readers")
    group.permissions.add(view)
    client.user.groups.add(group)
    assert client.get(f"{API}/plugins/").status_code == 200
    group.permissions.remove(view)
    assert client.get(f"{API}/plugins/").status_code == 403


def test_token_authentication_is_what_the_clients_use(reader, p1) -> None:
    # No session cookie anywhere: the token alone authenticates.
    assert not reader.cookies
    assert reader.get(f"{API}/plugins/").status_code == 200


def test_session_login_works_and_posts_need_the_csrf_token(django_user_model, p1) -> None:
    user = django_user_model.objects.create_superuser("sam", "sam@x.io", None)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(f"{API}/plugins/").status_code == 200
    refused = client.post(f"{API}/plugins/p1/disable/")
    assert refused.status_code == 403 and "CSRF" in error_of(refused)["message"]
    client.get("/admin/")  # sets the csrftoken cookie (its logout form), as pages do
    token = client.cookies["csrftoken"].value
    done = client.post(f"{API}/plugins/p1/disable/", HTTP_X_CSRFTOKEN=token)
    assert done.status_code == 200
    assert PluginEvent.objects.filter(actor="sam", reason="disabled").exists()


def test_an_inactive_users_token_no_longer_works(reader, p1) -> None:
    reader.user.is_active = False
    reader.user.save()
    assert reader.get(f"{API}/plugins/").status_code == 401


def test_schema_and_docs_need_no_login(anon) -> None:
    schema = anon.get(f"{API}/schema/")
    assert schema.status_code == 200
    docs = anon.get(f"{API}/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
