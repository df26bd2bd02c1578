"""Signed plugins: ``plugins keygen`` and ``plugins sign``, and the signature policy
(``PLUGINS_SIGNATURE_POLICY``, ``PLUGINS_TRUSTED_KEYS``) deciding which plugins load."""

from __future__ import annotations

import base64
import json
import logging
import stat
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management.base import CommandError

from stonks_plugins import trust
from stonks_plugins.discovery import scan_directory_plugin
from stonks_plugins.models import Plugin
from stonks_plugins.trust import policy
from tests.cli import cli, cli_json

from .conftest import MakePlugin, Markers, served

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``keys(name)``: a new key pair made by ``plugins keygen``: (key file, public key)."""

    def make(name: str) -> tuple[Path, str]:
        path = tmp_path / f"{name}.pem"
        code, out, _ = cli("keygen", str(path))
        assert code == 0
        return path, out.strip()

    return make


def lock_and_sign(name: str, key: Path) -> None:
    assert cli("lock", name)[0] == 0
    code, out, err = cli("sign", name, "--key", str(key))
    assert code == 0, out + err


# -- keygen and sign --------------------------------------------------------------------------


def test_keygen_writes_a_private_key_and_prints_the_public_key(tmp_path: Path) -> None:
    path = tmp_path / "author.pem"
    code, out, err = cli("keygen", str(path))
    assert code == 0
    (line,) = out.splitlines()
    assert line.startswith("ed25519:") and len(base64.b64decode(line[8:])) == 32
    assert "keep it secret" in err and "PLUGINS_TRUSTED_KEYS" in err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pem.decode() not in out + err  # the secret is never printed

    code, out, err = cli("keygen", str(path))  # never overwritten
    assert code == 1 and "already exists" in err
    assert path.read_bytes() == pem
    code, data = cli_json("keygen", str(tmp_path / "other.pem"))
    assert code == 0 and data["public_key"].startswith("ed25519:")


def test_sign_writes_a_detached_signature_of_the_manifest(make_plugin: MakePlugin, keys) -> None:
    root = make_plugin("signme")
    key, public = keys("author")
    lock_and_sign("signme", key)
    doc = json.loads((root / "plugin_manifest.sig").read_text())
    assert set(doc) == {"key", "signature"} and doc["key"] == public
    verdict = trust.verdict(scan_directory_plugin(root))
    assert (verdict.status, verdict.key, verdict.locked) == ("untrusted_key", public, True)
    assert cli("sync")[0] == 0
    code, out, _ = cli("show", "signme")
    assert code == 0
    assert f"signed by {public}, a key that is not trusted; locked" in out


def test_sign_refuses_an_unlocked_or_changed_plugin_and_bad_keys(
    make_plugin: MakePlugin, keys, tmp_path: Path
) -> None:
    root = make_plugin("careful")
    key, _ = keys("author")
    code, _, err = cli("sign", "careful", "--key", str(key))
    assert code == 1 and "is not locked" in err and "plugins lock" in err
    assert not (root / "plugin_manifest.sig").exists()

    assert cli("lock", "careful")[0] == 0
    (root / "trustpkg" / "data.py").write_text("POSITION = None\n")
    code, _, err = cli("sign", "careful", "--key", str(key))
    assert code == 1 and "changed: trustpkg/data.py" in err and "Nothing was signed" in err

    assert cli("lock", "careful")[0] == 0
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    code, _, err = cli("sign", "careful", "--key", str(bad))
    assert code == 1 and "not an unencrypted PEM private key" in err
    code, _, err = cli("sign", "careful", "--key", str(tmp_path / "absent.pem"))
    assert code == 1 and "cannot read the key file" in err
    with pytest.raises(CommandError, match="--key"):  # exit 2 from manage.py
        cli("sign", "careful")
    assert not (root / "plugin_manifest.sig").exists()


def test_locking_again_drops_the_signature_it_invalidates(make_plugin: MakePlugin, keys) -> None:
    root = make_plugin("relock")
    key, _ = keys("author")
    lock_and_sign("relock", key)
    (root / "trustpkg" / "more.py").write_text("x = 1\n")
    code, out, _ = cli("lock", "relock")
    assert code == 0 and "removed plugin_manifest.sig" in out and "sign again" in out
    assert not (root / "plugin_manifest.sig").exists()


# -- the policy -------------------------------------------------------------------------------


def test_enforce_loads_a_plugin_signed_by_a_trusted_key(
    settings, make_plugin: MakePlugin, markers: Markers, keys, admin_client_logged
) -> None:
    make_plugin("good", "GOOD")
    key, public = keys("author")
    lock_and_sign("good", key)
    settings.PLUGINS_SIGNATURE_POLICY = "enforce"
    settings.PLUGINS_TRUSTED_KEYS = [public]
    cli("sync")
    row = Plugin.objects.get(name="good")
    assert (row.state, row.error) == ("active", None)
    assert row.trust == {
        "status": "signed",
        "key": public,
        "locked": True,
        "problem": None,
        "trusted": True,
    }
    assert served(admin_client_logged)["good"] == {"GOOD"}
    assert markers.ran("good") == ["folder", "package", "services"]


def _refused(name: str, status: str, *fragments: str) -> None:
    row = Plugin.objects.get(name=name)
    assert (row.state, row.error_code) == ("error", "integrity_failed"), row.error
    assert row.trust["status"] == status
    for fragment in fragments:
        assert fragment in row.error_message


def test_enforce_refuses_unsigned_and_untrusted_plugins(
    settings, make_plugin: MakePlugin, markers: Markers, keys, admin_client_logged
) -> None:
    make_plugin("plain", "PLAN")
    make_plugin("stranger", "STRG")
    _, trusted_public = keys("ours")
    other_key, other_public = keys("theirs")
    lock_and_sign("stranger", other_key)
    settings.PLUGINS_SIGNATURE_POLICY = "enforce"
    settings.PLUGINS_TRUSTED_KEYS = trusted_public  # one comma-separated string works too
    cli("sync")
    _refused("plain", "unsigned", "not signed", "'enforce'", "plugins sign")
    _refused("stranger", "untrusted_key", other_public, "not listed in PLUGINS_TRUSTED_KEYS")
    assert cli("enable", "plain")[0] == 1
    assert served(admin_client_logged).keys().isdisjoint({"plain", "stranger"})
    assert markers.ran("plain") == markers.ran("stranger") == []

    # Trusting the other key lets the signed plugin in at the next sync.
    settings.PLUGINS_TRUSTED_KEYS = f"{trusted_public}, {other_public}"
    cli("sync")
    assert Plugin.objects.get(name="stranger").state == "active"
    assert Plugin.objects.get(name="plain").state == "error"


def test_a_manifest_edited_after_signing_has_a_bad_signature(
    settings, make_plugin: MakePlugin, markers: Markers, keys
) -> None:
    root = make_plugin("forged")
    key, public = keys("author")
    lock_and_sign("forged", key)
    manifest = root / "plugin_manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b"trust test broker", b"trust test broken"))
    settings.PLUGINS_TRUSTED_KEYS = [public]

    cli("sync")  # policy off: it loads, its trust says what is wrong
    row = Plugin.objects.get(name="forged")
    assert row.state == "active" and row.trust["status"] == "bad_signature"
    assert "changed after it was signed" in row.trust["problem"]

    settings.PLUGINS_SIGNATURE_POLICY = "enforce"
    markers.clear()
    cli("reload", "forged")
    _refused("forged", "bad_signature", "signature is bad", "changed after it was signed")
    assert markers.ran("forged") == []


def test_warn_loads_an_unsigned_plugin_with_a_warning_logged_once(
    settings, make_plugin: MakePlugin, caplog
) -> None:
    make_plugin("lenient")
    settings.PLUGINS_SIGNATURE_POLICY = "warn"
    with caplog.at_level(logging.WARNING, logger="stonks_plugins.trust.policy"):
        cli("sync")
        cli("sync")
    row = Plugin.objects.get(name="lenient")
    assert (row.state, row.error) == ("active", None)
    (warning,) = [w for w in row.warnings if w.startswith("trust:")]
    assert "not signed" in warning and "'warn'" in warning
    logged = [r for r in caplog.records if "lenient" in r.getMessage()]
    assert len(logged) == 1

    settings.PLUGINS_SIGNATURE_POLICY = "off"
    cli("sync")
    assert not [w for w in Plugin.objects.get(name="lenient").warnings if "trust" in w]


def test_the_loader_applies_the_policy_too(settings, make_plugin: MakePlugin, markers) -> None:
    """A plugin served from a row made under another policy is refused when it loads."""
    from stonks_plugins import loader
    from stonks_plugins.errors import PluginError, ReasonCode

    root = make_plugin("late")
    settings.PLUGINS_SIGNATURE_POLICY = "enforce"
    with pytest.raises(PluginError) as info:
        loader.resolve(scan_directory_plugin(root), "trustpkg.services.PortfolioService")
    assert info.value.code is ReasonCode.INTEGRITY_FAILED
    assert markers.ran("late") == []


# -- bad settings -----------------------------------------------------------------------------


def _trust_errors() -> list[str]:
    return [
        f"{m.id}: {m.msg}" for m in run_checks() if str(m.id).startswith("stonks_plugins.trust")
    ]


def test_bad_trust_settings_are_system_check_errors(settings, keys) -> None:
    _, public = keys("author")
    settings.PLUGINS_TRUSTED_KEYS = [public]
    assert _trust_errors() == []
    settings.PLUGINS_SIGNATURE_POLICY = "enforced"
    settings.PLUGINS_TRUSTED_KEYS = [public, "ed25519:AAAA", "rsa:xyz"]
    errors = _trust_errors()
    assert errors[0].startswith("stonks_plugins.trust.E001: PLUGINS_SIGNATURE_POLICY is 'enforced'")
    assert "PLUGINS_TRUSTED_KEYS[1]" in errors[1] and "32 bytes" in errors[1]
    assert "PLUGINS_TRUSTED_KEYS[2]" in errors[2] and "expected 'ed25519:'" in errors[2]
    # Meanwhile it fails closed: an unknown policy is 'enforce', a bad key trusts nothing.
    assert policy.current_policy() is trust.Policy.ENFORCE
    assert policy.trusted_keys() == {public}


# -- real exit codes ----------------------------------------------------------------------------


@pytest.mark.slow
def test_exit_codes_of_lock_keygen_and_sign_in_a_subprocess(
    make_plugin: MakePlugin, plugin_dirs, tmp_path: Path
) -> None:
    from tests.conftest import manage_in_subprocess

    make_plugin("sub")
    manage = manage_in_subprocess(tmp_path, plugin_dirs.path)
    key = tmp_path / "k.pem"
    done = manage("plugins", "keygen", str(key))
    assert done.returncode == 0 and done.stdout.startswith("ed25519:"), done.stderr
    assert manage("plugins", "keygen", str(key)).returncode == 1  # exists
    unlocked = manage("plugins", "sign", "sub", "--key", str(key))
    assert unlocked.returncode == 1 and "is not locked" in unlocked.stderr
    assert manage("plugins", "lock", "sub").returncode == 0
    assert manage("plugins", "sign", "sub", "--key", str(key)).returncode == 0
    assert manage("plugins", "sign", "sub").returncode == 2  # --key is required
    assert manage("plugins", "lock").returncode == 2
    assert manage("plugins", "lock", "nope").returncode == 1
