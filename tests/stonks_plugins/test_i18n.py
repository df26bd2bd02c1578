"""Languages (README "Languages"): the console, the API's messages and the CLI in Dutch and
Spanish, manifests' localised names, and catalogs that are complete and compiled.

The site's language is ``LANGUAGE_CODE``; a request may ask for another of ``LANGUAGES`` with
``Accept-Language``. Stable codes (reason codes, states in the API and ``--json``, JSON keys)
never change with the language; English text is exactly what it was.
"""

from __future__ import annotations

import gettext
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import translation
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from stonks_plugins.admin.labels import FIELD_LABELS, HEALTH_LABELS, MODEL_NAMES, TRUST_LABELS
from stonks_plugins.error_texts import error_text
from stonks_plugins.errors import PluginNotFound
from stonks_plugins.manager import manager
from stonks_plugins.manifest import validate_manifest
from stonks_plugins.manifest.texts import language_candidates, localized
from stonks_plugins.manifest.validation import fast_parse_manifest
from stonks_plugins.models import STATE_LABELS, Plugin
from tests.cli import cli, cli_exit, cli_json
from tests.conftest import BUNDLED, FIXTURES, ROOT
from tests.stonks_plugins.api.helpers import API, error_of, plugin_row

PLUGINS = "/admin/stonks_plugins/plugin/"
CATALOGS = [
    ROOT / "stonks_plugins" / "locale" / lang / "LC_MESSAGES" / "django.po" for lang in ("nl", "es")
] + [ROOT / "locale" / lang / "LC_MESSAGES" / "django.po" for lang in ("nl", "es")]
TRANSLATIONS = {
    "nl": {"display_name": "Gezonde test", "description": "Een gezonde broker om mee te testen"},
    "es": {"display_name": "Prueba sana"},  # no description: it falls back to the English one
}


@pytest.fixture(autouse=True)
def _language_reset(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Each request's middleware activates its language in this thread; leave none behind."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture
def translated_plugin(plugin_dirs, db) -> Plugin:  # type: ignore[no-untyped-def]
    """healthy-fixture with Dutch and Spanish texts in its manifest, synced (active)."""
    folder = plugin_dirs.add("healthy-fixture")
    path = folder / "plugin_manifest.json"
    data = json.loads(path.read_text("utf-8"))
    data["plugin"]["translations"] = TRANSLATIONS
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), "utf-8")
    manager.sync(actor="setup")
    return Plugin.objects.get(name="healthy-fixture")


@pytest.fixture
def operator(client: Client, django_user_model) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@x.io", "pw"))
    return client


def api_client(django_user_model: Any, *perms: str) -> APIClient:
    user = django_user_model.objects.create_user(f"user-{len(perms)}", "u@x.io", None)
    for codename in perms:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="stonks_plugins", codename=codename)
        )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


# -- the console --------------------------------------------------------------------------------


def test_the_plugin_list_renders_in_dutch_with_language_code_nl(
    settings, translated_plugin: Plugin, operator: Client
) -> None:
    settings.LANGUAGE_CODE = "nl"
    html = operator.get(PLUGINS).content.decode()
    assert '<html lang="nl"' in html
    for dutch in (
        "Console-overzicht",  # our object tools
        "Nu synchroniseren",
        "Een plugin installeren",
        "Geselecteerde plugins inschakelen",  # the actions
        "Laatste fout",  # a column
        "Op gezondheid",  # a filter (Django's "By ..." in Dutch)
        '<span class="so-badge so-state-active">actief</span>',  # the code stays in the class
        '<span class="so-badge so-health-none">niet gecontroleerd</span>',
        "Selecteer",  # Django's own admin, in the same language
    ):
        assert dutch in html, dutch
    assert "Sync now" not in html and "Console overview" not in html


def test_the_plugin_page_renders_in_dutch_with_the_manifests_dutch_name(
    settings, translated_plugin: Plugin, operator: Client
) -> None:
    settings.LANGUAGE_CODE = "nl"
    html = operator.get(f"{PLUGINS}{translated_plugin.pk}/change/").content.decode()
    for dutch in (
        "Configuratie",
        "Statistieken",
        "Gebeurtenissen",
        "Afhankelijkheden",
        "Ga naar:",
        "Inschakelen",  # the action buttons
        "Gezondheid controleren",
        "Deze plugin heeft geen andere plugin nodig, en geen enkele plugin heeft hem nodig.",
        "Weergavenaam",  # a model field's label
        '<span class="so-summary-name">Gezonde test</span>',
        "Een gezonde broker om mee te testen",
    ):
        assert dutch in html, dutch
    assert "Jump to:" not in html


def test_a_browser_asking_for_spanish_gets_spanish_whatever_the_site_language(
    settings, translated_plugin: Plugin, operator: Client
) -> None:
    settings.LANGUAGE_CODE = "nl"
    response = operator.get(f"{PLUGINS}overview/", HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9")
    html = response.content.decode()
    assert response["Content-Language"] == "es"
    assert "Sincronizar ahora" in html and "Por estado" in html
    assert '<span class="so-tile-name">Prueba sana</span>' in html  # the manifest's es name
    page = operator.get(f"{PLUGINS}{translated_plugin.pk}/change/", HTTP_ACCEPT_LANGUAGE="es")
    # No Spanish description in the manifest: the English one is shown.
    assert "Test fixture: Healthy Fixture" in page.content.decode()


def test_a_site_language_the_operator_set_wins_over_the_browsers(
    settings, translated_plugin: Plugin, operator: Client
) -> None:
    """LANGUAGE_CODE set in the environment (LANGUAGE_FROM_BROWSER off): an English browser
    gets the Dutch site; a language the user chose (the cookie) still wins."""
    settings.LANGUAGE_CODE = "nl"
    settings.LANGUAGE_FROM_BROWSER = False
    response = operator.get(PLUGINS, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert response["Content-Language"] == "nl"
    assert "Nu synchroniseren" in response.content.decode()
    operator.cookies[settings.LANGUAGE_COOKIE_NAME] = "es"
    chosen = operator.get(PLUGINS, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert chosen["Content-Language"] == "es"
    assert "Sincronizar ahora" in chosen.content.decode()


def test_console_messages_are_translated(
    settings, translated_plugin: Plugin, operator: Client
) -> None:
    settings.LANGUAGE_CODE = "nl"
    response = operator.post(
        f"{PLUGINS}{translated_plugin.pk}/do/disable/", follow=True, HTTP_ACCEPT_LANGUAGE="nl"
    )
    shown = [str(m) for m in response.context["messages"]]
    assert shown == ["healthy-fixture uitgeschakeld: nu uitgeschakeld"], shown


def test_the_console_is_english_by_default(translated_plugin: Plugin, operator: Client) -> None:
    html = operator.get(PLUGINS).content.decode()
    assert "Console overview" in html and "Sync now" in html
    assert '<span class="so-badge so-state-active">active</span>' in html
    page = operator.get(f"{PLUGINS}{translated_plugin.pk}/change/").content.decode()
    assert '<span class="so-summary-name">Healthy Fixture</span>' in page
    assert "Jump to:" in page and "Capabilities &amp; services" in page


def test_english_labels_are_the_codes_and_the_names_django_derives() -> None:
    """Labels set for translation change nothing in English (and need no migration)."""
    with translation.override("en"):
        assert all(str(label) == state for state, label in STATE_LABELS.items())
        assert all(str(label) == code for code, label in HEALTH_LABELS.items() if code)
        assert {k: str(v) for k, v in TRUST_LABELS.items()} == {
            k: k.replace("_", " ") for k in TRUST_LABELS
        }
        for model, labels in FIELD_LABELS.items():
            for name, label in labels.items():
                assert str(label) == name.replace("_", " "), (model, name)
        for model, (singular, plural) in MODEL_NAMES.items():
            assert model._meta.verbose_name_raw == str(singular)
            assert str(plural) == f"{singular}s"


# -- the API --------------------------------------------------------------------------------------


def test_api_errors_answer_in_the_requested_language(db, django_user_model) -> None:
    reader = api_client(django_user_model, "view_plugin")
    missing = reader.get(f"{API}/plugins/nope/", HTTP_ACCEPT_LANGUAGE="nl")
    assert missing.status_code == 404
    error = error_of(missing)
    assert error["code"] == "not_found"  # the code is stable
    assert error["message"] == (
        "geen plugin met de naam 'nope' (voer 'manage.py plugins sync' uit om nieuwe te ontdekken)"
    )
    nowhere = reader.get(f"{API}/nowhere", HTTP_ACCEPT_LANGUAGE="es")
    assert error_of(nowhere)["message"].startswith("no hay ningún endpoint de la API en")

    stranger = api_client(django_user_model)
    refused = stranger.get(f"{API}/plugins/", HTTP_ACCEPT_LANGUAGE="nl")
    assert refused.status_code == 403
    assert error_of(refused) == {
        "code": "permission_denied",
        "message": "voor het lezen van plugins is de permissie 'stonks_plugins.view_plugin' nodig",
        "details": [],
    }

    bad = reader.get(f"{API}/plugins/?enabled=maybe", HTTP_ACCEPT_LANGUAGE="nl")
    error = error_of(bad)
    assert error["code"] == "validation_error"
    assert error["message"] == (
        "ongeldige invoer (1 probleem bij enabled): moet true of false zijn, niet 'maybe'"
    )
    assert error["details"][0]["path"] == "enabled"  # names stay as sent


def test_api_errors_are_english_by_default(db, django_user_model) -> None:
    reader = api_client(django_user_model, "view_plugin")
    message = error_of(reader.get(f"{API}/plugins/nope/"))["message"]
    assert message == "no plugin named 'nope' (run 'manage.py plugins sync' to discover)"
    assert message == str(PluginNotFound("nope"))


def test_the_site_language_is_the_apis_default(settings, db, django_user_model) -> None:
    settings.LANGUAGE_CODE = "es"
    stranger = api_client(django_user_model)
    message = error_of(stranger.get(f"{API}/plugins/"))["message"]
    assert message == "leer plugins requiere el permiso 'stonks_plugins.view_plugin'"


def test_the_api_shows_display_names_in_the_requested_language(db, django_user_model) -> None:
    manifest = {"plugin": {"name": "acme", "translations": TRANSLATIONS}}
    Plugin.objects.bulk_create(
        [
            plugin_row("acme", display_name="Acme", description="An acme", manifest=manifest),
            plugin_row("plain", display_name="Plain"),
        ]
    )
    reader = api_client(django_user_model, "view_plugin")

    def names(language: str | None) -> dict[str, str]:
        extra = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
        rows = reader.get(f"{API}/plugins/", **extra).json()["results"]
        return {r["name"]: r["display_name"] for r in rows}

    assert names(None) == {"acme": "Acme", "plain": "Plain"}
    assert names("nl") == {"acme": "Gezonde test", "plain": "Plain"}
    assert names("nl-BE") == {"acme": "Gezonde test", "plain": "Plain"}  # its base language
    assert names("es") == {"acme": "Prueba sana", "plain": "Plain"}

    detail = reader.get(f"{API}/plugins/acme/", HTTP_ACCEPT_LANGUAGE="nl").json()
    assert detail["display_name"] == "Gezonde test"
    assert detail["description"] == "Een gezonde broker om mee te testen"
    assert detail["manifest"]["plugin"]["translations"] == TRANSLATIONS  # every language, raw
    spanish = reader.get(f"{API}/plugins/acme/", HTTP_ACCEPT_LANGUAGE="es").json()
    assert spanish["description"] == "An acme"  # no Spanish one: the manifest's own


# -- the CLI --------------------------------------------------------------------------------------


def test_the_cli_speaks_the_site_language(settings, translated_plugin: Plugin) -> None:
    settings.LANGUAGE_CODE = "nl"  # what `LANGUAGE_CODE=nl manage.py plugins ...` sets
    code, out, _ = cli("list")
    assert code == 0
    assert out.splitlines()[0].split() == ["NAAM", "VERSIE", "TYPE", "BRON", "TOESTAND", "FOUT"]
    code, out, _ = cli("show", "healthy-fixture")
    assert (
        re.search(r"^weergavenaam: +Gezonde test$", out, re.M) and "recente gebeurtenissen:" in out
    )
    code, _, err = cli_exit("show", "nope")
    assert code == 1
    assert err.strip() == (
        "fout: geen plugin met de naam 'nope' (voer 'manage.py plugins sync' uit om nieuwe te "
        "ontdekken)"
    )
    # Machine-readable output does not change with the language.
    code, rows = cli_json("list")
    assert rows[0]["display_name"] == "Healthy Fixture" and rows[0]["state"] == "active"
    code, failed = cli_json("show", "nope")
    assert code == 1 and set(failed) == {"error"}


def test_the_cli_is_english_by_default(translated_plugin: Plugin) -> None:
    _, out, _ = cli("list")
    assert out.splitlines()[0].split() == ["NAME", "VERSION", "TYPE", "SOURCE", "STATE", "ERROR"]
    _, out, _ = cli("show", "healthy-fixture")
    assert re.search(r"^display_name: +Healthy Fixture$", out, re.M)


def test_a_fresh_manage_py_process_follows_language_code(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(
        LANGUAGE_CODE="es",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PLUGIN_DIRS=str(tmp_path),
    )
    target = FIXTURES / "schema-violation"
    run = subprocess.run(
        [sys.executable, "manage.py", "plugins", "validate", str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    assert run.stdout.startswith("no válido: "), run.stdout


# -- manifests ------------------------------------------------------------------------------------


def _manifest(**plugin: Any) -> dict[str, Any]:
    return {
        "plugin": {"name": "acme", "version": "1.0.0", "type": "broker", **plugin},
        "api": {"min_version": "1.0.0"},
        "services": {"portfolio": "acme.services.Portfolio"},
    }


@pytest.mark.parametrize(
    ("translations", "where"),
    [
        ({"Dutch": {"display_name": "x"}}, "$.plugin.translations"),
        ({"nl_NL": {"display_name": "x"}}, "$.plugin.translations"),
        ({"nl": {"display_name": "x" * 201}}, "$.plugin.translations.nl.display_name"),
        ({"nl": {"description": "x" * 2001}}, "$.plugin.translations.nl.description"),
        ({"nl": {"title": "x"}}, "$.plugin.translations.nl"),
        ({"nl": {"display_name": 5}}, "$.plugin.translations.nl.display_name"),
        ({"nl": "Acme"}, "$.plugin.translations.nl"),
        (
            {f"{chr(97 + i // 26)}{chr(97 + i % 26)}": {} for i in range(51)},
            "$.plugin.translations",
        ),
    ],
)
def test_bad_translations_are_refused_with_their_path(translations: Any, where: str) -> None:
    data = _manifest(translations=translations)
    issues = validate_manifest(data)
    assert issues and all(i.path.startswith(where) for i in issues), issues
    assert fast_parse_manifest(json.dumps(data).encode(), "test") is None  # never the fast path


def test_good_translations_are_accepted_on_both_paths() -> None:
    data = _manifest(translations={"nl": {"display_name": "Acme NL"}, "pt-br": {}, "es": {}})
    assert validate_manifest(data) == []
    model = fast_parse_manifest(json.dumps(data).encode(), "test")
    assert model is not None
    assert model.plugin.translations["nl"].display_name == "Acme NL"


def test_every_bundled_plugin_has_dutch_and_spanish_texts() -> None:
    for path in sorted(BUNDLED.glob("*/plugin_manifest.json")):
        plugin = json.loads(path.read_text("utf-8"))["plugin"]
        for language in ("nl", "es"):
            texts = plugin["translations"][language]
            assert texts["display_name"] and texts["description"], (path, language)


def test_localized_texts_fall_back_per_text_and_language() -> None:
    translations = {"nl": {"display_name": "NL"}, "nl-be": {"description": "BE"}, "es": {}}
    defaults = {"display_name": "EN", "description": "en"}
    assert localized(translations, "nl-BE", **defaults) == {
        "display_name": "NL",
        "description": "BE",
    }
    assert localized(translations, "es", **defaults) == defaults
    assert localized(translations, "en-us", **defaults) == defaults  # the manifest's own
    assert localized(None, "nl", **defaults) == defaults
    assert language_candidates("pt_BR") == ["pt-br", "pt"]
    assert language_candidates("en-gb") == [] and language_candidates(None) == []


def test_surface_wording_of_engine_errors_is_the_engine_text_in_english() -> None:
    with translation.override("en"):
        assert error_text(PluginNotFound("x")) == str(PluginNotFound("x"))


# -- the catalogs ---------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]|\{\w+\}")
_QUOTED = re.compile(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) "(.*)"$')


def _unquote(text: str) -> str:
    return json.loads(f'"{text}"')  # a .po string's escapes are JSON's (\\ \" \n \t)


def read_po(path: Path) -> list[dict[str, Any]]:
    """Entries as {"flags", "msgctxt", "msgid", "msgid_plural", "msgstr" or "msgstr[N]"}."""
    entries: list[dict[str, Any]] = []
    entry: dict[str, Any] = {"flags": set()}
    key = ""
    for line in [*path.read_text("utf-8").splitlines(), ""]:
        if not line.strip():
            if "msgid" in entry:
                entries.append(entry)
            entry, key = {"flags": set()}, ""
        elif line.startswith("#,"):
            entry["flags"].update(f.strip() for f in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif match := _QUOTED.match(line):
            key = match[1]
            entry[key] = _unquote(match[2])
        else:
            assert line.startswith('"') and key, f"{path}: cannot read {line!r}"
            entry[key] += _unquote(line[1:-1])
    return entries


def _plurals(header: str) -> int:
    match = re.search(r"nplurals=(\d+)", header)
    assert match, header
    return int(match[1])


def _catalog_key(entry: dict[str, Any]) -> str:
    msgid = entry["msgid"]
    return f"{entry['msgctxt']}\x04{msgid}" if "msgctxt" in entry else msgid


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_catalogs_are_complete(po: Path) -> None:
    header, *entries = read_po(po)
    assert header["msgid"] == "" and "fuzzy" not in header["flags"]
    forms = _plurals(header["msgstr"])
    assert entries
    for e in entries:
        where = f"{po.relative_to(ROOT)}: {e['msgid']!r}"
        assert "fuzzy" not in e["flags"], f"{where} is fuzzy"
        if "msgid_plural" in e:
            shown = [e.get(f"msgstr[{n}]", "") for n in range(forms)]
            assert all(shown), f"{where} lacks a plural form: {shown}"
        else:
            assert e["msgstr"], f"{where} is not translated"
        source = e["msgid"] + e.get("msgid_plural", "")
        placeholders = set(_PLACEHOLDER.findall(source))
        for form in (v for k, v in e.items() if k.startswith("msgstr")):
            assert set(_PLACEHOLDER.findall(form)) <= placeholders, f"{where}: {form!r}"


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_compiled_catalogs_match_their_po(po: Path) -> None:
    """The committed .mo is the .po compiled: same entries, same translations (a fresh
    machine has no gettext to compile them)."""
    mo = po.with_suffix(".mo")
    assert mo.is_file(), f"{mo} is missing: run 'make messages'"
    with mo.open("rb") as f:
        compiled = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
    _, *entries = read_po(po)
    expected: dict[Any, str] = {}
    for e in entries:
        key = _catalog_key(e)
        if "msgid_plural" in e:
            forms = sorted(k for k in e if k.startswith("msgstr["))
            expected.update({(key, n): e[k] for n, k in enumerate(forms)})
        else:
            expected[key] = e["msgstr"]
    found = {k: v for k, v in compiled.items() if k != ""}  # "" is the header
    assert found == expected, f"{mo} is out of date: run 'make messages'"


@pytest.mark.skipif(not shutil.which("xgettext"), reason="GNU gettext (xgettext) is not installed")
def test_catalogs_hold_every_message_of_the_sources(tmp_path: Path) -> None:
    """makemessages on a copy of the sources finds no message the catalogs lack (and none
    they hold that the sources dropped): 'make messages' has been run since the last change."""
    for name in ("stonks_overwatch", "stonks_plugins", "templates", "locale"):
        shutil.copytree(
            ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo")
        )
    shutil.copy(ROOT / "manage.py", tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    run = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "nl", "--no-obsolete"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr

    def keys(path: Path) -> set[tuple[str | None, str, str | None]]:
        _, *entries = read_po(path)
        return {(e.get("msgctxt"), e["msgid"], e.get("msgid_plural")) for e in entries}

    for po in CATALOGS[::2]:  # the Dutch ones; the Spanish ones hold the same messages
        fresh = keys(tmp_path / po.relative_to(ROOT))
        assert fresh == keys(po), (
            f"{po.relative_to(ROOT)} differs from the sources "
            f"(new: {sorted(fresh - keys(po))[:5]}, gone: {sorted(keys(po) - fresh)[:5]}): "
            "run 'make messages' and translate the new entries"
        )
    for nl, es in (CATALOGS[0:2], CATALOGS[2:4]):
        assert keys(nl) == keys(es), f"{nl} and {es} hold different messages"
