"""Where an operator sees a plugin's trust: the API (list and detail), the console (a column
and a line on the plugin's page) and the CLI (``list --json``, ``show``)."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from stonks_plugins.models import Plugin
from tests.cli import cli, cli_json

from .conftest import MakePlugin

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(settings, make_plugin: MakePlugin, tmp_path: Path) -> str:
    """'signed' (by a trusted key), 'tampered' (a locked file changed), 'plain' (unsigned);
    returns the trusted public key."""
    key = tmp_path / "author.pem"
    public = cli("keygen", str(key))[1].strip()
    make_plugin("signed")
    tampered = make_plugin("tampered")
    make_plugin("plain")
    for name in ("signed", "tampered"):
        assert cli("lock", name)[0] == 0
    assert cli("sign", "signed", "--key", str(key))[0] == 0
    (tampered / "trustpkg" / "data.py").write_text("POSITION = None\n")
    settings.PLUGINS_TRUSTED_KEYS = [public]
    cli("sync")
    return public


def test_api_list_and_detail_show_trust(admin_client_logged, three: str) -> None:
    rows = {r["name"]: r for r in admin_client_logged.get("/api/v1/plugins/").json()["results"]}
    assert rows["signed"]["trust"] == {
        "status": "signed",
        "key": three,
        "locked": True,
        "problem": None,
        "trusted": True,
    }
    assert rows["plain"]["trust"]["status"] == "unsigned"
    detail = admin_client_logged.get("/api/v1/plugins/tampered/").json()
    assert detail["trust"]["status"] == "tampered" and detail["trust"]["trusted"] is False
    assert "changed: trustpkg/data.py" in detail["trust"]["problem"]
    assert detail["error"]["code"] == "integrity_failed"


def test_a_row_not_checked_yet_shows_null(admin_client_logged, three: str) -> None:
    Plugin.objects.filter(name="plain").update(trust={})
    assert admin_client_logged.get("/api/v1/plugins/plain/").json()["trust"] is None
    assert cli_json("show", "plain")[1]["trust"] is None


def test_console_shows_trust_in_the_list_and_on_the_plugin_page(
    admin_client_logged, three: str
) -> None:
    listing = admin_client_logged.get("/admin/stonks_plugins/plugin/").content.decode()
    assert "so-health-healthy" in listing and ">signed<" in listing
    assert ">tampered<" in listing and ">unsigned<" in listing
    pk = Plugin.objects.get(name="signed").pk
    page = html.unescape(
        admin_client_logged.get(f"/admin/stonks_plugins/plugin/{pk}/change/").content.decode()
    )
    assert f"signed by {three} (trusted key), locked" in page
    pk = Plugin.objects.get(name="tampered").pk
    page = html.unescape(
        admin_client_logged.get(f"/admin/stonks_plugins/plugin/{pk}/change/").content.decode()
    )
    assert "tampered: its files do not match the lock" in page
    assert "changed: trustpkg/data.py" in page


def test_a_legacy_broker_is_shown_as_part_of_the_host() -> None:
    from stonks_plugins.trust import describe

    assert "legacy broker" in describe({}, source="legacy")
    assert describe({}) == "not checked yet (run 'manage.py plugins sync')"


def test_cli_list_and_show(three: str) -> None:
    code, rows = cli_json("list")
    assert code == 0
    trust = {r["name"]: r["trust"]["status"] for r in rows}
    assert trust == {"plain": "unsigned", "signed": "signed", "tampered": "tampered"}
    code, out, _ = cli("show", "signed")
    assert code == 0 and f"trust:         signed by {three} (trusted key), locked" in out
    code, out, _ = cli("show", "plain")
    assert "trust:         unsigned, not locked" in out


@pytest.mark.slow
def test_integrity_benchmark_prints_its_table() -> None:
    """It still runs and prints its table (a small N; never a timing assertion)."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_integrity.py", "--n", "5", "--repeat", "1", "--json"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONIOENCODING="utf-8", REDIS_URL=""),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "integrity benchmark: 5 locked directory plugins" in out
    for row in ("stat floor", "hash floor", "cold", "warm", "warm verdict"):
        assert any(line.startswith(row + " ") for line in out.splitlines()), row
    assert "overall: " in out
    figures = json.loads(out[out.index("\n{") + 1 :])
    assert figures["n"] == 5 and figures["files"] == 30
