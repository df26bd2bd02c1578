"""Declared permissions of process-isolated plugins, enforced in real child processes: the
child starts without the host's secrets, and what its manifest does not declare - a file, a
host, a program, ctypes - fails the call with ``permission_denied``, even when the plugin
catches the error. Fixture: ``tests/fixtures/plugins/perm-probe`` (its ``probe(action,
...)`` does what the test asks), copied with the permissions each test declares."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stonks_plugins.discovery.directories import scan_directory_plugin
from stonks_plugins.errors import ReasonCode
from stonks_plugins.manifest.validation import validate_manifest
from stonks_plugins.sandbox.permissions import child_environment
from stonks_plugins.sandbox.process import ProcessCallError, ProcessHost
from tests.conftest import FIXTURES

Probe = Callable[..., ProcessHost]
SECRETS = {
    "SECRET_KEY": "django-secret-value-4711",
    "PLUGINS_SECRET_KEY": "plugins-secret-value-4712",
    "DATABASE_URL": "postgres://postgres:hunter2@127.0.0.1:5432/stonks",
}


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[Probe]:
    """``probe(*permissions, deny_paths=...)``: a started host for a copy of perm-probe that
    declares ``permissions``; every host is closed at the end."""
    hosts: list[ProcessHost] = []

    def make(*permissions: str, **kwargs: Any) -> ProcessHost:
        dest = tmp_path / "plugins" / f"perm-probe-{len(hosts)}"
        shutil.copytree(FIXTURES / "perm-probe", dest, ignore=shutil.ignore_patterns("__pycache__"))
        manifest_path = dest / "plugin_manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["permissions"] = list(permissions)
        manifest_path.write_text(json.dumps(manifest, indent=2))
        cand = scan_directory_plugin(dest)
        assert cand.ok, cand.problem
        kwargs.setdefault("call_timeout", 20.0)
        kwargs.setdefault("start_timeout", 30.0)
        host = ProcessHost(cand, **kwargs)
        hosts.append(host)
        host.start()
        return host

    yield make
    for host in hosts:
        host.close(grace=2.0)


def run(host: ProcessHost, action: str, *args: Any) -> Any:
    return host.call("portfolio", "probe", action, *args)


def refused(host: ProcessHost, action: str, *args: Any) -> ProcessCallError:
    """The call's error, which must be ``permission_denied``; the child must live on."""
    pid = host.pid
    with pytest.raises(ProcessCallError) as info:
        run(host, action, *args)
    err = info.value
    assert err.code is ReasonCode.PERMISSION_DENIED, err.message
    assert err.message.startswith(f"plugin '{host.name}' may not "), err.message
    assert host.pid == pid and host.alive  # a refusal is not a crash
    return err


# -- the grammar ----------------------------------------------------------------------------------


def test_a_bad_permission_is_manifest_invalid_naming_the_entry() -> None:
    cand = scan_directory_plugin(FIXTURES / "perm-bad-grammar")
    assert cand.problem is not None
    assert cand.problem.code is ReasonCode.MANIFEST_INVALID
    paths = {d["path"]: d["message"] for d in cand.problem.details}
    assert list(paths) == ["$.permissions[1]"]
    assert "netwrk:api.example.com:443" in paths["$.permissions[1]"]


@pytest.mark.parametrize(
    "entry",
    [
        "network",  # no host
        "network:api.example.com:0",
        "network:api.example.com:65536",
        "network:[not-ipv6]",
        "read:",
        "read: /etc",  # a space, not a path
        "read:~other/x",  # only the user's own home
        "write:$TMP/x",  # only $TMPDIR
        "subprocess:bin/tool",  # a name or an absolute path
        "env:*",  # everything: not a permission
        "env:API TOKEN",
        "filesystem:/",
    ],
)
def test_typos_and_overreach_are_not_permissions(entry: str) -> None:
    data = json.loads((FIXTURES / "perm-probe" / "plugin_manifest.json").read_text())
    data["permissions"] = ["read:data", entry]
    issues = {i.path for i in validate_manifest(data)}
    assert issues == {"$.permissions[1]"}


def test_every_form_of_the_grammar_is_accepted() -> None:
    data = json.loads((FIXTURES / "perm-probe" / "plugin_manifest.json").read_text())
    data["permissions"] = [
        "network:api.example.com",
        "network:api.example.com:443",
        "network:*.example.com:443",
        "network:*",
        "network:127.0.0.1:5432",
        "network:[::1]:8080",
        "read:data",
        "read:/etc/ssl/certs",
        "read:~/.config/acme",
        "write:$TMPDIR",
        "write:$TMPDIR/acme",
        "subprocess:git",
        "subprocess:/usr/bin/gpg",
        "env:ACME_TOKEN",
        "env:ACME_*",
    ]
    assert validate_manifest(data) == []


# -- the environment ----------------------------------------------------------------------------


def test_the_child_starts_without_the_hosts_secrets(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SOME_OTHER_VARIABLE", "other-value")
    host = probe()
    for name in [*SECRETS, "SOME_OTHER_VARIABLE"]:
        assert run(host, "env", name) is None
    seen = set(run(host, "environ"))
    assert seen <= {*child_environment([], os.environ), "STONKS_PLUGIN_ISOLATION"}
    assert run(host, "env", "STONKS_PLUGIN_ISOLATION") == "process"
    # Launched so, not scrubbed afterwards: the process's initial environment block holds no
    # secret either (read from outside; from inside, /proc is refused).
    assert host.pid is not None
    block = Path(f"/proc/{host.pid}/environ").read_bytes()
    assert all(value.encode() not in block for value in SECRETS.values())
    assert b"STONKS_PLUGIN_ISOLATION=process" in block
    err = refused(host, "read_bytes", "/proc/self/environ")
    assert "/environ" in err.message


def test_env_passes_exactly_what_is_declared_and_never_the_projects_secrets(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BROKER_TOKEN", "t1")
    monkeypatch.setenv("BROKER_TOKEN_OLD", "t0")
    monkeypatch.setenv("ACME_A", "a")
    monkeypatch.setenv("ACME_B", "b")
    host = probe("env:BROKER_TOKEN", "env:ACME_*", "env:SECRET_KEY", "env:DATABASE_URL")
    assert run(host, "env", "BROKER_TOKEN") == "t1"
    assert run(host, "env", "BROKER_TOKEN_OLD") is None
    assert (run(host, "env", "ACME_A"), run(host, "env", "ACME_B")) == ("a", "b")
    assert run(host, "env", "SECRET_KEY") is None  # declared, and still never passed
    assert run(host, "env", "DATABASE_URL") is None
    assert run(host, "env", "PLUGINS_SECRET_KEY") is None


# -- what a plugin that declares nothing may do ---------------------------------------------------


def test_a_plugin_that_declares_nothing_imports_its_modules_and_the_stdlib(probe: Probe) -> None:
    host = probe()
    assert json.loads(run(host, "stdlib")) == {
        "rows": [["a", "b"], ["1", "2"]],
        "total": "3.30",
        "day": "2024-02-01",
    }
    assert run(host, "own_file") == "the probe's own data file"
    version, listed = run(host, "metadata")  # scans every sys.path entry, names only
    assert version and listed
    assert run(host, "platform") == ("Linux", True)  # looks its own host name up
    assert [e.symbol for e in host.call("portfolio", "get_portfolio")] == ["PRB1"]


# -- files and the database ---------------------------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A SQLite file standing for the host's database, outside the plugin's folder."""
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("create table secrets (value text)")
        conn.execute("insert into secrets values ('broker-password')")
    conn.close()
    return path


def test_the_database_file_is_refused(probe: Probe, database: Path) -> None:
    host = probe()
    err = refused(host, "sqlite", str(database))
    assert f'declare "write:{database}"' in err.message
    err = refused(host, "read_bytes", str(database))
    assert f'may not read {database}: declare "read:{database}"' in err.message
    from django.conf import settings

    name = str(settings.DATABASES["default"]["NAME"])
    if os.path.isfile(name):  # the embedded default outside the test run
        refused(host, "read_bytes", name)


def test_the_hosts_database_is_refused_even_when_declared(probe: Probe, database: Path) -> None:
    host = probe(f"read:{database}", f"write:{database.parent}", deny_paths=(str(database),))
    err = refused(host, "read_bytes", str(database))
    assert "declare" not in err.message
    refused(host, "sqlite", str(database))


def test_read_declared_path_is_allowed_and_others_refused(probe: Probe, tmp_path: Path) -> None:
    mine, other = tmp_path / "mine.txt", tmp_path / "other.txt"
    mine.write_text("declared")
    other.write_text("not declared")
    host = probe(f"read:{mine}")
    assert run(host, "read", str(mine)) == "declared"
    err = refused(host, "read", str(other))
    assert f'declare "read:{other}"' in err.message
    refused(host, "write", str(mine), "changed")  # read is not write
    assert mine.read_text() == "declared"
    refused(host, "listdir", str(tmp_path))
    assert run(host, "read", str(mine)) == "declared"  # the refusal did not stick


def test_a_refusal_the_plugin_catches_still_fails_the_call(probe: Probe, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    host = probe()
    err = refused(host, "read_caught", str(secret))
    assert str(secret) in err.message
    assert "Refused here" in err.traceback and "_read_caught" in err.traceback


def test_symlinks_and_dot_dot_are_resolved_before_deciding(probe: Probe, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    (allowed / "link.txt").symlink_to(secret)
    host = probe(f"read:{allowed}")
    refused(host, "read", str(allowed / "link.txt"))
    refused(host, "read", str(allowed / ".." / "secret.txt"))


def test_write_declared_folder_and_the_temp_dir(probe: Probe, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    host = probe(f"write:{out}", "write:$TMPDIR")
    assert run(host, "write", str(out / "a.txt"), "hello") == "written"
    assert (out / "a.txt").read_text() == "hello"
    assert run(host, "read", str(out / "a.txt")) == "hello"  # write implies read
    assert run(host, "tempdir") == ["f.txt", "sub"]  # made and removed, subfolders too
    nowhere = probe()
    refused(nowhere, "write", str(out / "b.txt"), "x")
    refused(nowhere, "tempdir")


# -- network ----------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[int]:
    """A listening TCP socket on 127.0.0.1: its port (connections wait in the backlog)."""
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_connections_go_only_to_declared_hosts(probe: Probe, listener: int) -> None:
    err = refused(probe(), "connect", "127.0.0.1", listener)
    assert f'declare "network:127.0.0.1:{listener}"' in err.message
    assert run(probe(f"network:127.0.0.1:{listener}"), "connect", "127.0.0.1", listener) == (
        "connected"
    )
    other_port = listener + 1 if listener < 65535 else 1
    refused(probe(f"network:127.0.0.1:{other_port}"), "connect", "127.0.0.1", listener)
    # A declared name: the addresses it resolves to are its own.
    by_name = probe(f"network:localhost:{listener}")
    assert run(by_name, "connect", "localhost", listener) == "connected"
    err = refused(by_name, "connect", "example.invalid", 443)  # refused before the lookup
    assert 'declare "network:example.invalid:443"' in err.message


# -- processes and native code ------------------------------------------------------------------


def test_only_declared_programs_run(probe: Probe) -> None:
    assert shutil.which("echo"), "the test needs an echo program"
    assert run(probe("subprocess:echo"), "run", "echo", "hi") == "hi\n"
    err = refused(probe(), "run", "echo", "hi")
    assert 'declare "subprocess:echo"' in err.message


def test_a_python_child_cannot_be_spawned_around_the_hook(probe: Probe) -> None:
    # multiprocessing's launcher calls _posixsubprocess.fork_exec, which raises no audit
    # event: a fresh interpreter would run without any of the checks.
    err = refused(probe(), "spawn_python")
    assert os.path.realpath(sys.executable) in err.message


def test_ctypes_is_refused(probe: Probe) -> None:
    err = refused(probe(), "ctypes")
    assert "ctypes" in err.message and "declare" not in err.message
