"""The import report where users look (issue 14): a broker's rows per file and outcome
(understood, skipped by a rule, reported) and its reported rows, in the CLI, on the console
page and in health - read from the plugin's running services, in process and from a child
process; with the plugin's secrets masked in row text, and a clear answer for a plugin that
keeps no report. (The API: ``api/test_imports_api.py``.)"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command

from stonks_plugins.health import Health
from stonks_plugins.import_report import merge, plain
from stonks_plugins.imports import NoImportReport
from stonks_plugins.manager import manager
from stonks_plugins.models import HealthCheck, Plugin
from stonks_plugins.redaction import MASK, forget_all
from stonks_plugins.registry import plugin_registry
from tests.conftest import fast_process_plugins

pytestmark = pytest.mark.django_db

BROKER = "imports-broker"
ISOLATED = "imports-proc"
PASSWORD = "pw-Imp0rt-9xq-secret"
MYSTERY = "unknown description 'Mystery credit' with an amount: not applied"
BAD_QUANTITY = "quantity 'abc' is not a number"

ACCOUNT = {"rows": 7, "understood": 2, "skipped": {"cash_sweep": 2, "header": 1, "zero_amount": 1}}


@pytest.fixture(autouse=True)
def _no_known_secrets(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    forget_all()  # a secret known from an earlier test would mask this test's output
    yield
    forget_all()


def cli(*args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``manage.py plugins ...``."""
    out, err = io.StringIO(), io.StringIO()
    status = 0
    try:
        call_command("plugins", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        status = int(exc.code or 0)
    return status, out.getvalue(), err.getvalue()


def _isolated_copy(plugin_dirs) -> Path:  # type: ignore[no-untyped-def]
    """The same broker as a process-isolated plugin of another name."""
    folder = plugin_dirs.add("imports-broker", as_name=ISOLATED)
    manifest_path = folder / "plugin_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["plugin"]["name"] = ISOLATED
    manifest["isolation"] = "process"
    manifest_path.write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def broker(plugin_dirs) -> Path:  # type: ignore[no-untyped-def]
    folder = plugin_dirs.add("imports-broker")
    manager.sync()
    row = Plugin.objects.get(name=BROKER)
    assert row.state == "active", row.error_message
    return folder  # type: ignore[no-any-return]


def assert_the_fixtures_report(report: dict, name: str) -> None:  # type: ignore[type-arg]
    assert report["plugin"] == name and report["read_at"] is not None
    assert report["files"]["Account.csv"] == {**ACCOUNT, "reported": 1}
    # The transaction service keeps the older list of (file, line, reason): no row counts.
    assert report["files"]["Transactions.csv"] == {
        "rows": None,
        "understood": None,
        "skipped": {},
        "reported": 1,
    }
    assert report["totals"] == {
        "files": 2,
        "rows": None,
        "understood": None,
        "skipped": 4,
        "reported": 2,
    }
    assert report["reported"] == [
        {
            "file": "Account.csv",
            "line": 6,
            "outcome": "reported",
            "rule": "unknown_description",
            "reason": MYSTERY,
            "text": "2024-01-05,Mystery credit,12.50,EUR",
        },
        {
            "file": "Transactions.csv",
            "line": 3,
            "outcome": "reported",
            "rule": "",
            "reason": BAD_QUANTITY,
            "text": "",
        },
    ]
    assert report["truncated"] == 0


# -- the engine ---------------------------------------------------------------------------


def test_the_report_merges_the_services_and_reads_their_files_first(broker) -> None:
    # No page asked the broker for anything: reading the report has its services read.
    report = manager.import_report(BROKER)
    assert_the_fixtures_report(report, BROKER)
    # The portfolio and deposit services read Account.csv into identical reports: counted once.
    assert report["files"]["Account.csv"]["reported"] == 1


def test_a_plugin_without_a_report_says_so(plugin_dirs) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    with pytest.raises(NoImportReport, match="'healthy-fixture': keeps no import report"):
        manager.import_report("healthy-fixture")
    status, out, err = cli("imports", "healthy-fixture")
    assert status == 1 and out == ""
    assert "error: plugin 'healthy-fixture': keeps no import report" in err
    status, out, _ = cli("imports", "healthy-fixture", "--json")
    assert status == 1 and "keeps no import report" in json.loads(out)["error"]


def test_a_disabled_broker_is_not_read(broker) -> None:
    manager.disable(BROKER)
    status, _, err = cli("imports", BROKER)
    assert status == 1 and "is disabled" in err and "enable it" in err


def test_services_that_share_a_report_and_old_rows_merge_without_doubles() -> None:
    account = {
        "files": {"a.csv": {"rows": 3, "understood": 1, "skipped": {"header": 1}, "reported": 1}},
        "reported": [
            {
                "file": "a.csv",
                "line": 3,
                "outcome": "reported",
                "rule": "bad_number",
                "reason": "amount 'x'",
                "text": "3,x",
            },
        ],
        "truncated": 0,
        "complete": True,
    }
    old = plain([("a.csv", 3, "amount 'x'"), ("b.csv", 2, "no date")])
    assert old is not None
    merged = merge([account, dict(account), old])
    assert merged["files"]["a.csv"]["rows"] == 3  # the counted telling wins
    assert [(r["file"], r["line"], r["rule"]) for r in merged["reported"]] == [
        ("a.csv", 3, "bad_number"),
        ("b.csv", 2, ""),
    ]
    assert merged["totals"]["reported"] == 2 and merged["complete"] is False


# -- the CLI --------------------------------------------------------------------------------


def test_the_cli_prints_counts_and_reported_rows_and_exits_1(broker) -> None:
    status, out, _ = cli("imports", BROKER)
    assert status == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{BROKER}: import report read ")
    account = next(line for line in lines if line.startswith("Account.csv"))
    assert account.split()[:5] == ["Account.csv", "7", "2", "4", "1"]
    assert "cash_sweep 2, header 1, zero_amount 1" in account
    assert next(line for line in lines if line.startswith("Transactions.csv")).split()[:5] == [
        "Transactions.csv",
        "?",
        "?",
        "0",
        "1",
    ]
    assert f"  Account.csv:6 {MYSTERY} [unknown_description]" in lines
    assert "      2024-01-05,Mystery credit,12.50,EUR" in lines
    assert f"  Transactions.csv:3 {BAD_QUANTITY}" in lines
    assert lines[-1].startswith("incomplete: 2 rows were reported and not imported")

    status, out, _ = cli("imports", BROKER, "--json")
    assert status == 1
    assert_the_fixtures_report(json.loads(out), BROKER)


def test_a_clean_import_exits_0(broker) -> None:
    (broker / "exports" / "Account.csv").write_text(
        "Date,Description,Amount,Currency\n2024-01-02,Deposit,1000.00,EUR\n"
    )
    (broker / "exports" / "Transactions.csv").write_text(
        "Date,Symbol,Quantity,Price,Currency\n2024-01-10,IMPX,2,50.00,EUR\n"
    )
    status, out, _ = cli("imports", BROKER)
    assert status == 0, out
    assert out.splitlines()[-1] == "complete: every row understood or skipped by a named rule"
    assert "reported rows:" not in out


def test_an_unknown_plugin_exits_1(db) -> None:
    status, _, err = cli("imports", "no-such-plugin")
    assert status == 1 and "no plugin named 'no-such-plugin'" in err


# -- the console ------------------------------------------------------------------------------


def test_the_console_page_shows_the_import_section(broker, admin_client_logged) -> None:
    pk = Plugin.objects.get(name=BROKER).pk
    html = admin_client_logged.get(f"/admin/stonks_plugins/plugin/{pk}/change/").content.decode()
    assert 'id="imports"' in html and '<a href="#imports">Import</a>' in html
    assert (
        '<tr data-import-file="Account.csv"><td>Account.csv</td><td>7</td><td>2</td>'
        "<td>4</td><td>1</td>"
    ) in html
    assert '<tr data-import-file="Transactions.csv"><td>Transactions.csv</td><td>?</td>' in html
    assert '<tr data-import-row="Account.csv:6">' in html
    escaped = MYSTERY.replace("'", "&#x27;")
    assert f"<td>{escaped}</td>" in html
    assert "2 rows reported" in html


def test_the_console_page_of_a_plugin_without_a_report_has_no_import_section(
    plugin_dirs, admin_client_logged
) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    pk = Plugin.objects.get(name="healthy-fixture").pk
    response = admin_client_logged.get(f"/admin/stonks_plugins/plugin/{pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="imports"' not in html and 'href="#imports"' not in html


# -- health -----------------------------------------------------------------------------------


def test_health_is_degraded_while_rows_are_reported(broker) -> None:
    [outcome] = manager.check_health(BROKER)
    assert outcome.status.status is Health.DEGRADED
    message = outcome.status.message
    assert message.startswith("2 rows reported by its import: ")
    assert f"Account.csv:6 {MYSTERY}" in message and f"Transactions.csv:3 {BAD_QUANTITY}" in message
    stored = HealthCheck.objects.filter(plugin__name=BROKER).latest("created_at")
    assert stored.status == "degraded" and stored.details["imports"]["reported"] == 2
    status, out, _ = cli("health", BROKER)
    assert status == 0 and "degraded" in out  # degraded is not unhealthy

    # Fixed exports: healthy again at the next check.
    (broker / "exports" / "Account.csv").write_text("Date,Description,Amount,Currency\n")
    (broker / "exports" / "Transactions.csv").write_text("Date,Symbol,Quantity,Price,Currency\n")
    [outcome] = manager.check_health(BROKER)
    assert outcome.status.status is Health.HEALTHY, outcome.status.message


def test_a_broker_without_a_report_keeps_its_health(plugin_dirs) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    [outcome] = manager.check_health("healthy-fixture")
    assert outcome.status.status is Health.HEALTHY


# -- secrets ----------------------------------------------------------------------------------


def test_a_secret_in_a_rows_text_is_masked_everywhere(
    broker, admin_client_logged, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        manager.set_config(BROKER, {"credentials": {"username": "ann", "password": PASSWORD}})
    # An export row that quotes the account's password (a transfer reference, say).
    account = broker / "exports" / "Account.csv"
    account.write_text(account.read_text() + f"2024-03-01,Transfer {PASSWORD},5.00,EUR\n")
    forget_all()  # only the config system's word may mask it, not this process's memory

    report = manager.import_report(BROKER)
    [row] = [r for r in report["reported"] if r["line"] == 8]
    assert row["text"] == f"2024-03-01,Transfer {MASK},5.00,EUR"
    assert PASSWORD not in row["reason"] and MASK in row["reason"]
    pk = Plugin.objects.get(name=BROKER).pk
    texts = {
        "report": json.dumps(report, default=str),
        "cli": "".join(cli("imports", BROKER)[1:]),
        "cli --json": "".join(cli("imports", BROKER, "--json")[1:]),
        "console": admin_client_logged.get(
            f"/admin/stonks_plugins/plugin/{pk}/change/"
        ).content.decode(),
        "api": admin_client_logged.get(f"/api/v1/plugins/{BROKER}/imports/").content.decode(),
        "health": manager.check_health(BROKER)[0].status.message,
    }
    assert [label for label, text in texts.items() if PASSWORD in text] == []
    assert all(MASK in text for text in texts.values()), texts


# -- a process-isolated broker --------------------------------------------------------------


@pytest.mark.slow
def test_an_isolated_brokers_report_is_read_from_its_child(plugin_dirs, settings) -> None:
    fast_process_plugins(settings, call_timeout=10.0)
    _isolated_copy(plugin_dirs)
    manager.sync()
    row = Plugin.objects.get(name=ISOLATED)
    assert row.state == "active", row.error_message
    try:
        report = manager.import_report(ISOLATED)
        assert_the_fixtures_report(report, ISOLATED)
        host = plugin_registry.loaded()[ISOLATED].host
        assert host is not None and host.alive  # read there: the plugin's code is not here
        [outcome] = manager.check_health(ISOLATED)
        assert outcome.status.status is Health.DEGRADED
        assert outcome.status.message.startswith("2 rows reported by its import: ")
        status, out, _ = cli("imports", ISOLATED)
        assert status == 1 and f"Account.csv:6 {MYSTERY}" in out
    finally:
        with contextlib.suppress(Exception):
            manager.unload_plugin(ISOLATED)
