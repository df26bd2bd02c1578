"""Operator actions cost the same number of queries with 100 plugins installed as with 10
(issue 17): enable, disable, reload, a config change (its save, and the task that applies
it) and a sync that changes nothing read and write the plugins they act on, never each
plugin installed. Timings are the benchmark's business (``benchmarks/bench_ops.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from stonks_plugins.tasks import apply_plugin_config

# Real transactions, as an operator's command runs them (no test-wide transaction whose
# savepoints would be counted), and the apply task queued for a worker as in production:
# the save and the apply are counted apart.
pytestmark = pytest.mark.django_db(transaction=True)

TARGET = "op-0005"
CONFIGURED = "op-0000"
MAX_QUERIES = 20
SERVICES = """from stonks_plugins.sdk import PortfolioServiceInterface, TotalPortfolio


class PortfolioService(PortfolioServiceInterface):
    def get_portfolio(self):
        return []

    def get_portfolio_total(self):
        return TotalPortfolio(total_value=0.0)
"""


@pytest.fixture(autouse=True)
def _apply_in_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    from stonks_overwatch.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", False)


def _add_plugins(base: Path, start: int, stop: int) -> None:
    """Trivial directory plugins ``op-START`` .. ``op-STOP-1``; ``op-0000`` has a config."""
    for i in range(start, stop):
        name, package = f"op-{i:04d}", f"op_{i:04d}"
        (base / name / package).mkdir(parents=True)
        manifest: dict[str, object] = {
            "plugin": {"name": name, "version": "1.0.0", "type": "broker"},
            "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
            "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
            "capabilities": {"services": ["portfolio"]},
            "services": {"portfolio": f"{package}.services.PortfolioService"},
        }
        if name == CONFIGURED:
            manifest["configuration"] = {
                "schema": {
                    "type": "object",
                    "properties": {"currency": {"enum": ["EUR", "USD"], "default": "EUR"}},
                }
            }
        (base / name / "plugin_manifest.json").write_text(json.dumps(manifest), "utf-8")
        (base / name / package / "__init__.py").write_text("", "utf-8")
        (base / name / package / "services.py").write_text(SERVICES, "utf-8")


def _state(name: str) -> tuple[str, bool]:
    row = Plugin.objects.get(name=name)
    return row.state, row.enabled


def _queries_per_action() -> dict[str, int]:
    """Each action once, with its queries counted; each checked to have done its job."""
    counts: dict[str, int] = {}

    def count(action: str, run: object) -> None:
        with CaptureQueriesContext(connection) as ctx:
            run()  # type: ignore[operator]
        counts[action] = len(ctx.captured_queries)

    count("sync", lambda: manager.sync())
    count("disable", lambda: manager.disable(TARGET, "operator"))
    assert _state(TARGET) == ("disabled", False)
    count("enable", lambda: manager.enable(TARGET, "operator"))
    assert _state(TARGET) == ("active", True)
    count("reload", lambda: manager.reload(TARGET, "operator"))
    assert _state(TARGET) == ("active", True)
    currency = "USD" if manager.get_config(CONFIGURED).data.get("currency") != "USD" else "EUR"
    saved: list[int] = []
    count(
        "config set",
        lambda: saved.append(manager.set_config(CONFIGURED, {"currency": currency}).version),
    )
    assert manager.get_config(CONFIGURED).status == "pending"  # queued for a worker
    count("config apply", lambda: apply_plugin_config.apply(args=(CONFIGURED, saved[0])))
    assert manager.get_config(CONFIGURED).status == "active"
    return counts


def test_operator_actions_take_as_many_queries_with_100_plugins_as_with_10(
    plugin_dirs,  # type: ignore[no-untyped-def]
) -> None:
    _add_plugins(plugin_dirs.path, 0, 10)
    assert len(manager.sync().added) == 10
    few = _queries_per_action()

    _add_plugins(plugin_dirs.path, 10, 100)
    assert len(manager.sync().added) == 90
    many = _queries_per_action()

    assert many == few
    assert max(many.values()) <= MAX_QUERIES, many


def test_a_sync_that_changes_nothing_writes_no_plugin_but_when_it_saw_them(
    plugin_dirs,  # type: ignore[no-untyped-def]
) -> None:
    _add_plugins(plugin_dirs.path, 0, 20)
    manager.sync()
    before = {p.name: p for p in Plugin.objects.all()}

    with CaptureQueriesContext(connection) as ctx:
        report = manager.sync()

    assert not report.changed and len(report.unchanged) == 20
    writes = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith(("UPDATE", "INSERT"))]
    assert len(writes) == 1 and '"last_seen_at"' in writes[0], writes
    for row in Plugin.objects.all():
        seen_before = before[row.name].last_seen_at
        assert seen_before is not None and row.last_seen_at is not None
        assert row.last_seen_at >= seen_before
        assert (row.state, row.manifest_hash) == (
            before[row.name].state,
            before[row.name].manifest_hash,
        )
