"""``GET /api/v1/plugins/{name}/imports/``: a broker's import report as a dashboard reads it -
rows per file and outcome and the reported rows; 404 for a plugin that keeps none, 409 for one
that is off; view permission, secrets masked."""

from __future__ import annotations

import pytest

from stonks_plugins.manager import manager
from stonks_plugins.redaction import MASK, forget_all

from .helpers import API, error_of

pytestmark = pytest.mark.django_db

BROKER = "imports-broker"
PASSWORD = "pw-Api-Imp0rt-77"
URL = f"{API}/plugins/{BROKER}/imports/"


@pytest.fixture
def broker(plugin_dirs):  # type: ignore[no-untyped-def]
    forget_all()
    folder = plugin_dirs.add("imports-broker")
    manager.sync()
    yield folder
    forget_all()


def test_the_report_answers_counts_and_rows(reader, broker) -> None:
    response = reader.get(URL)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["plugin"] == BROKER and body["read_at"]
    assert body["files"]["Account.csv"] == {
        "rows": 7,
        "understood": 2,
        "skipped": {"cash_sweep": 2, "header": 1, "zero_amount": 1},
        "reported": 1,
    }
    assert body["files"]["Transactions.csv"]["rows"] is None  # an older list: not counted
    assert body["totals"] == {
        "files": 2,
        "rows": None,
        "understood": None,
        "skipped": 4,
        "reported": 2,
    }
    assert [(r["file"], r["line"], r["rule"], r["reason"]) for r in body["reported"]] == [
        (
            "Account.csv",
            6,
            "unknown_description",
            "unknown description 'Mystery credit' with an amount: not applied",
        ),
        ("Transactions.csv", 3, "", "quantity 'abc' is not a number"),
    ]
    assert body["reported"][0]["text"] == "2024-01-05,Mystery credit,12.50,EUR"
    assert body["truncated"] == 0 and body["complete"] is False


def test_a_plugin_without_a_report_is_a_404(reader, plugin_dirs) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    response = reader.get(f"{API}/plugins/healthy-fixture/imports/")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found"
    assert "plugin 'healthy-fixture': keeps no import report" in error["message"]
    response = reader.get(f"{API}/plugins/no-such-plugin/imports/")
    assert response.status_code == 404 and "no plugin named" in error_of(response)["message"]


def test_a_disabled_broker_is_a_409(reader, broker) -> None:
    manager.disable(BROKER)
    response = reader.get(URL)
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict" and "is disabled" in error["message"]


def test_reading_needs_view_permission(make_client, anon, broker) -> None:
    assert anon.get(URL).status_code == 401
    assert make_client("nobody").get(URL).status_code == 403
    assert make_client("viewer", "view_plugin").get(URL).status_code == 200


def test_a_secret_in_a_rows_text_is_masked(reader, broker, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        manager.set_config(BROKER, {"credentials": {"username": "ann", "password": PASSWORD}})
    account = broker / "exports" / "Account.csv"
    account.write_text(account.read_text() + f"2024-03-01,Ref {PASSWORD},5.00,EUR\n")
    forget_all()  # the config system's word alone must mask it
    response = reader.get(URL)
    assert response.status_code == 200
    assert PASSWORD not in response.content.decode()
    [row] = [r for r in response.json()["reported"] if r["line"] == 8]
    assert row["text"] == f"2024-03-01,Ref {MASK},5.00,EUR"
