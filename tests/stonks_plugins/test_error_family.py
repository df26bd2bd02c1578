"""One error family: every exception the engine raises derives from ``StonksPluginsError``;
the process-isolation errors are ``SandboxError``s; and a plugin says why it cannot run by
raising ``PluginNotReady`` (retried in the background), ``PluginAuthFailed`` (waits in
``error`` for the operator) or ``PluginConfigRejected`` (``config_invalid`` with its message),
as Home Assistant's ``ConfigEntryNotReady``/``ConfigEntryAuthFailed`` do. ``return False``
still fails as before, with a deprecation warning naming the plugin.

The fixtures are the ``err-*`` folders of ``tests/fixtures/plugins`` (see its README)."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stonks_plugins
from stonks_overwatch.core.exceptions import BrokerUnavailableError
from stonks_plugins import loaded as loaded_module
from stonks_plugins import sdk, tasks
from stonks_plugins.errors import PluginStateError, ReasonCode, StonksPluginsError
from stonks_plugins.manager import manager
from stonks_plugins.models import ConfigStatus, Plugin, PluginConfig
from stonks_plugins.registry import plugin_registry
from stonks_plugins.runtime import loads
from stonks_plugins.runtime.background import background
from stonks_plugins.runtime.serving import serving
from stonks_plugins.sandbox import SandboxError
from stonks_plugins.sandbox.process import (
    ProcessCallError,
    ProcessCircuitOpen,
    ProcessCrashed,
    ProcessIsolationError,
    ProcessTimeout,
)
from tests.cli import cli, cli_json
from tests.conftest import fast_process_plugins
from tests.stonks_overwatch.test_home import failures, page, symbols
from tests.stonks_plugins.runtime.helpers import wait_until

NOT_READY = "err-not-ready"
PROC_NOT_READY = "err-proc-not-ready"
AUTH = "err-auth-failed"
REJECTS = "err-config-rejected"
FALSE = "err-false-return"
GOOD_KEY = "good-key-1234"
BAD_KEY = "wrong-key-9876"


# -- helpers ------------------------------------------------------------------------------------
def _listed(name: str) -> dict[str, Any]:
    """The plugin's row in ``plugins list --json``: what an operator or a script sees."""
    code, rows = cli_json("list")
    assert code == 0
    return next(row for row in rows if row["name"] == name)


def _state(name: str) -> tuple[str, str | None]:
    row = _listed(name)
    return row["state"], (row["error"] or {}).get("code")


def _attempts(folder: Path) -> int:
    path = folder / "attempts"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _set_config(name: str, data: dict[str, Any], capture: Any) -> PluginConfig:
    """Save a config as an operator does; its apply task runs when the save commits."""
    with capture(execute=True):
        view = manager.set_config(name, data, actor="ops")
    return PluginConfig.objects.get(plugin__name=name, version=view.version)


@pytest.fixture(autouse=True)
def _warn_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deprecation warning is given once per plugin and process: once per test here."""
    monkeypatch.setattr(loaded_module, "_warned_false", set())


# -- one family ---------------------------------------------------------------------------------
OUTSIDE_THE_FAMILY = {
    "stonks_plugins.runtime.reaper.CallStopped": (
        "a BaseException raised asynchronously into a runaway plugin thread: no plugin's "
        "`except Exception` may swallow it"
    ),
    "stonks_plugins.management.cli.Failed": (
        "the CLI's exit-status signal (the command ran and the thing failed: exit 1), caught "
        "by the command itself"
    ),
}
"""Exceptions defined in the engine's package that are deliberately not engine errors. The
REST API's ``APIException`` subclasses (``stonks_plugins.api``) are HTTP responses that DRF
renders, not errors the engine raises: they keep DRF's base."""


def _package_exceptions() -> Iterator[tuple[str, type[BaseException]]]:
    for info in pkgutil.walk_packages(stonks_plugins.__path__, "stonks_plugins."):
        if ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == info.name and issubclass(obj, BaseException):
                yield f"{obj.__module__}.{obj.__qualname__}", obj


def test_every_exception_the_engine_defines_derives_from_the_one_base() -> None:
    from rest_framework.exceptions import APIException

    found = dict(_package_exceptions())
    assert "stonks_plugins.errors.PluginError" in found  # the walk sees the package
    outside = sorted(
        name
        for name, cls in found.items()
        if not issubclass(cls, StonksPluginsError)
        and name not in OUTSIDE_THE_FAMILY
        and not (name.startswith("stonks_plugins.api.") and issubclass(cls, APIException))
    )
    assert outside == []
    assert set(OUTSIDE_THE_FAMILY) <= set(found)  # the allow-list names real classes
    # Callers that catch a builtin type still do.
    from stonks_plugins.errors import PluginNotFound
    from stonks_plugins.exports.errors import ExportError
    from stonks_plugins.plugin_files import PluginFileError
    from stonks_plugins.sandbox.permissions.guard import Denied

    assert issubclass(PluginNotFound, LookupError) and issubclass(PluginFileError, OSError)
    assert issubclass(Denied, PermissionError) and issubclass(ExportError, ValueError)


def test_sandbox_and_process_errors_are_one_hierarchy_that_crosses_a_pipe() -> None:
    for cls in (ProcessCrashed, ProcessTimeout, ProcessCallError, ProcessCircuitOpen):
        assert issubclass(cls, ProcessIsolationError)
        assert issubclass(cls, SandboxError) and issubclass(cls, BrokerUnavailableError)
    crashed = ProcessTimeout(
        "proc-x", ReasonCode.TIMEOUT, "get_portfolio did not answer", operation="load",
        cause="timeout", exitcode=-9, signal="SIGKILL", pid=4321,
    )  # fmt: skip
    refused = ProcessCircuitOpen("proc-x", "restart due in 3.0 s", retry_in=3.0)

    for err in (crashed, refused):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)
        assert back.as_dict() == err.as_dict()  # the fields an event row stores
    back = pickle.loads(pickle.dumps(crashed))
    assert (back.plugin, back.code, back.operation, back.exitcode, back.signal) == (
        "proc-x", ReasonCode.TIMEOUT, "load", -9, "SIGKILL",
    )  # fmt: skip
    assert pickle.loads(pickle.dumps(refused)).retry_in == 3.0
    assert str(crashed) == "plugin 'proc-x': load failed: get_portfolio did not answer"


def test_the_sdk_gives_plugins_three_exceptions_each_with_its_code() -> None:
    assert {"PluginNotReady", "PluginAuthFailed", "PluginConfigRejected"} <= set(sdk.__all__)
    raised = {
        sdk.PluginNotReady: "not_ready",
        sdk.PluginAuthFailed: "auth_failed",
        sdk.PluginConfigRejected: "config_invalid",
    }
    for cls, code in raised.items():
        assert issubclass(cls, PluginStateError) and issubclass(cls, StonksPluginsError)
        err = cls("the broker says no")
        assert (err.code, err.message, str(err)) == (code, "the broker says no", err.message)
        assert cls().message  # a plugin that gives no reason still says something


# -- not ready: retried in the background -------------------------------------------------------
@pytest.mark.django_db
def test_a_plugin_not_ready_is_retried_and_comes_back_when_its_broker_is(
    plugin_dirs: Any, admin_client_logged: Any
) -> None:
    folder = plugin_dirs.add(NOT_READY)
    manager.sync()

    row = _listed(NOT_READY)
    assert (row["state"], row["error"]["code"]) == ("error", "not_ready")
    assert "api.example.test is unreachable" in row["error"]["message"]
    assert NOT_READY in failures(page(admin_client_logged))  # the page renders anyway

    summary = tasks.retry_failed.apply(throw=True).get()  # beat's retry job
    assert (summary["tried"], summary["still_failing"]) == (1, [NOT_READY])
    assert _state(NOT_READY) == ("error", "not_ready")

    (folder / ".ready").write_text("")  # the broker is back
    plugin_registry.forgive(NOT_READY)  # its backoff is over (no waiting in a test)
    summary = tasks.retry_failed.apply(throw=True).get()

    assert summary["recovered"] == [NOT_READY]
    assert _state(NOT_READY) == ("active", None)
    assert symbols(page(admin_client_logged))[NOT_READY] == {"ERNR"}


@pytest.mark.django_db
def test_a_process_isolated_plugin_not_ready_in_its_child_is_retried_too(
    plugin_dirs: Any, settings: Any
) -> None:
    fast_process_plugins(settings, call_timeout=10.0)
    settings.PLUGINS_SYNC_LOAD_TIMEOUT = 20.0  # a child's interpreter takes a while to start
    folder = plugin_dirs.add(PROC_NOT_READY)
    manager.sync()

    row = _listed(PROC_NOT_READY)
    assert (row["state"], row["error"]["code"]) == ("error", "not_ready")
    assert "api.example.test is unreachable" in row["error"]["message"]

    (folder / ".ready").write_text("")
    plugin_registry.forgive(PROC_NOT_READY)
    summary = tasks.retry_failed.apply(throw=True).get()

    assert summary["recovered"] == [PROC_NOT_READY]
    assert _state(PROC_NOT_READY) == ("active", None)
    loaded = plugin_registry.peek(PROC_NOT_READY)
    assert loaded is not None and loaded.host is not None and loaded.host.alive


# -- auth failed: waits for the operator --------------------------------------------------------
@pytest.mark.django_db
def test_auth_failed_waits_for_the_operator_and_a_config_change_tries_again(
    plugin_dirs: Any, admin_client_logged: Any, django_capture_on_commit_callbacks: Any
) -> None:
    folder = plugin_dirs.add(AUTH)
    manager.sync()
    row = _listed(AUTH)
    assert (row["state"], row["error"]["code"]) == ("error", "auth_failed")
    assert "refused the API key" in row["error"]["message"]
    tried = _attempts(folder)

    # The background retry job does not touch it: retrying a refused key helps nobody.
    plugin_registry.forgive(AUTH)
    summary = tasks.retry_failed.apply(throw=True).get()
    assert summary["tried"] == 0
    assert _attempts(folder) == tried and _state(AUTH) == ("error", "auth_failed")

    # A key the broker still refuses: the plugin is tried again, and fails again.
    _set_config(AUTH, {"credentials": {"api_key": BAD_KEY}}, django_capture_on_commit_callbacks)
    assert _attempts(folder) == tried + 1
    assert _state(AUTH) == ("error", "auth_failed")

    # The operator fixes the key: the config change brings it back.
    _set_config(AUTH, {"credentials": {"api_key": GOOD_KEY}}, django_capture_on_commit_callbacks)
    assert _state(AUTH) == ("active", None)
    assert symbols(page(admin_client_logged))[AUTH] == {"ERAF"}
    code, events = cli_json("events", AUTH)
    assert code == 0
    reasons = [e["reason"] for e in events]
    assert any("config version 2 is live: trying again" in r for r in reasons)
    assert GOOD_KEY not in str(events) and BAD_KEY not in str(events)  # secrets stay secret


@pytest.mark.django_db
def test_auth_failed_comes_back_on_an_operators_reload(plugin_dirs: Any) -> None:
    folder = plugin_dirs.add(AUTH)
    manager.sync()
    assert _state(AUTH) == ("error", "auth_failed")

    (folder / ".accepted").write_text("")  # fixed at the broker's end
    code, _, err = cli("reload", AUTH)

    assert code == 0, err
    assert _state(AUTH) == ("active", None)


@pytest.mark.django_db
def test_auth_failed_from_a_health_check_or_a_call_puts_the_plugin_in_error_at_once(
    plugin_dirs: Any, admin_client_logged: Any, django_capture_on_commit_callbacks: Any
) -> None:
    folder = plugin_dirs.add(AUTH)
    manager.sync()
    _set_config(AUTH, {"credentials": {"api_key": GOOD_KEY}}, django_capture_on_commit_callbacks)
    assert _state(AUTH) == ("active", None)

    (folder / ".revoked").write_text("")
    code, _ = cli_json("health", AUTH)
    assert code == 1
    row = _listed(AUTH)  # no threshold of failed checks: a revoked key does not heal
    assert (row["state"], row["error"]["code"]) == ("error", "auth_failed")
    assert "revoked the API key" in row["error"]["message"]

    (folder / ".revoked").unlink()
    assert cli("reload", AUTH)[0] == 0
    assert _state(AUTH) == ("active", None)
    (folder / ".revoked-service").write_text("")
    html = page(admin_client_logged)  # the call fails; the page renders the rest

    assert "revoked the API key during a call" in failures(html)[AUTH]
    row = _listed(AUTH)
    assert (row["state"], row["error"]["code"]) == ("error", "auth_failed")


# -- config rejected: config_invalid with the plugin's message ----------------------------------
@pytest.mark.django_db
def test_a_config_the_plugin_rejects_is_refused_with_its_message(
    plugin_dirs: Any, admin_client_logged: Any, django_capture_on_commit_callbacks: Any
) -> None:
    plugin_dirs.add(REJECTS)
    manager.sync()
    assert _state(REJECTS) == ("active", None)

    version = _set_config(
        REJECTS, {"settings": {"account": "closed"}}, django_capture_on_commit_callbacks
    )

    assert version.status == ConfigStatus.FAILED
    assert "account 'closed' is closed at the broker" in version.message
    assert _state(REJECTS) == ("active", None)  # the previous config stays live
    assert symbols(page(admin_client_logged))[REJECTS] == {"ACC-main"}


@pytest.mark.django_db
def test_a_plugin_loaded_with_a_config_it_rejects_waits_in_config_invalid(
    plugin_dirs: Any, admin_client_logged: Any, django_capture_on_commit_callbacks: Any
) -> None:
    plugin_dirs.add(REJECTS)
    manager.sync()
    manager.disable(REJECTS)  # off: a new config is checked against the schema only
    _set_config(REJECTS, {"settings": {"account": "closed"}}, django_capture_on_commit_callbacks)

    code, _, _ = cli("enable", REJECTS)

    assert code == 1  # the command ran and the plugin failed
    row = _listed(REJECTS)
    assert (row["state"], row["error"]["code"]) == ("error", "config_invalid")
    assert "account 'closed' is closed at the broker" in row["error"]["message"]
    assert tasks.retry_failed.apply(throw=True).get()["tried"] == 0  # the operator's turn

    _set_config(REJECTS, {"settings": {"account": "savings"}}, django_capture_on_commit_callbacks)
    assert _state(REJECTS) == ("active", None)
    assert symbols(page(admin_client_logged))[REJECTS] == {"ACC-savings"}


# -- return False: still fails, deprecated ------------------------------------------------------
@pytest.mark.django_db
def test_initialize_returning_false_still_fails_and_warns_naming_the_plugin(
    plugin_dirs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    folder = plugin_dirs.add(FALSE)
    (folder / ".refuse").write_text("")

    with pytest.warns(DeprecationWarning, match=f"plugin '{FALSE}': initialize.. returned False"):
        manager.sync()

    row = _listed(FALSE)
    assert (row["state"], row["error"]["code"]) == ("error", "initialize_failed")
    assert row["error"]["message"] == "initialize() returned False"
    assert any("raise PluginNotReady" in r.getMessage() for r in caplog.records)
    # A retry of a plugin that returned False is what it always was: initialize_failed.
    (folder / ".refuse").unlink()
    plugin_registry.forgive(FALSE)
    assert tasks.retry_failed.apply(throw=True).get()["recovered"] == [FALSE]


@pytest.mark.django_db
def test_on_config_change_returning_false_still_refuses_and_warns(
    plugin_dirs: Any, django_capture_on_commit_callbacks: Any
) -> None:
    folder = plugin_dirs.add(FALSE)
    manager.sync()
    assert _state(FALSE) == ("active", None)
    (folder / ".refuse").write_text("")

    with pytest.warns(DeprecationWarning, match=f"plugin '{FALSE}': on_config_change"):
        version = _set_config(
            FALSE, {"settings": {"note": "hello"}}, django_capture_on_commit_callbacks
        )

    assert version.status == ConfigStatus.FAILED
    assert "on_config_change() returned False" in version.message
    assert _state(FALSE) == ("active", None)


# -- in a serving process: the background runtime -----------------------------------------------
@pytest.fixture
def runtime(settings: Any) -> Iterator[None]:
    settings.PLUGINS_WARMUP = True
    settings.PLUGINS_REFRESH_INTERVAL = 0.1
    settings.CELERY_TASK_ALWAYS_EAGER = False  # no in-process beat in these tests
    yield
    background.stop()


@pytest.mark.django_db(transaction=True)
def test_the_background_runtime_retries_not_ready_and_leaves_auth_failed_alone(
    plugin_dirs: Any, runtime: None
) -> None:
    waiting = plugin_dirs.add(NOT_READY)
    refused = plugin_dirs.add(AUTH)
    assert background.start()

    manager.sync()  # the runtime's thread writes the outcomes: wait for them
    assert _attempts(refused) == 1
    assert wait_until(lambda: _state(NOT_READY) == ("error", "not_ready"))
    assert wait_until(lambda: _state(AUTH) == ("error", "auth_failed"))

    # The not-ready plugin is tried again and again with backoff, none of it asked for ...
    assert wait_until(lambda: _attempts(waiting) >= 3, timeout=20.0)
    # ... while the one whose key was refused was not tried once more meanwhile (nor is it
    # served any longer, now that its row says it waits for the operator).
    assert _attempts(refused) == 1
    assert wait_until(lambda: AUTH not in serving.registered) and not loads.running(AUTH)

    (waiting / ".ready").write_text("")
    assert wait_until(lambda: Plugin.objects.get(name=NOT_READY).state == "active", timeout=20.0)
    assert Plugin.objects.get(name=NOT_READY).events.filter(reason__startswith="recovered")
    assert _state(AUTH) == ("error", "auth_failed")
