"""The admin console in a real browser: Debian's Chromium driven by Playwright (no browser
download: Playwright launches /usr/bin/chromium) against a real server process.

The server is ``manage.py runserver --insecure`` (it serves the admin's static files, which
gunicorn does not) on the ``stack`` fixture's shared database — PostgreSQL when DATABASE_URL
names it, else a SQLite file — with Celery tasks eager (no broker), the embedded default.

An operator logs in, disables a plugin from the list and sees its badge change, opens the
config fixture's page, submits an invalid value and sees the error beside that field, then a
valid one and sees the new version. Full-page screenshots of each step are saved under
``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, IN_CI, ROOT
from tests.e2e.conftest import _free_port

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("STONKS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
USER, PASSWORD = "operator", "operator-pass"
SECRET = "browser-secret-9876"


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} (required in CI)")
    pytest.skip(what)


@pytest.fixture
def sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _missing(f"the playwright package is not installed: {exc}")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _missing(f"no Chromium at {CHROMIUM} (Debian package 'chromium')")
    return sync_playwright


@pytest.fixture
def console_server(stack) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A synced plugin folder, an operator account and a server answering on a free port."""
    for name in ("config-fixture", "healthy-fixture"):
        shutil.copytree(FIXTURES / name, stack.plugin_dir / name)
    stack.manage("plugins", "sync")
    stack.manage("plugins", "health")
    stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User;"
        f"User.objects.create_superuser('{USER}', 'op@example.com', '{PASSWORD}')",
    )
    port = _free_port()
    log = open(stack.tmp / "runserver.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--insecure", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=stack.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack.procs.append(proc)  # stopped by the stack fixture
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError("runserver exited:\n" + _log(stack))
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(
                    "runserver did not answer within 30 s:\n" + _log(stack)
                ) from None
            time.sleep(0.2)
    yield base


def _log(stack) -> str:  # type: ignore[no-untyped-def]
    path = stack.tmp / "runserver.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_operator_disables_a_plugin_and_configures_another(
    sync_playwright,
    console_server,
    stack,  # type: ignore[no-untyped-def]
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    base = console_server
    shots: list[Path] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(15_000)

            def shot(name: str, section: str = "") -> None:
                """A full-page screenshot, and one of ``section`` when given."""
                path = ARTIFACTS / f"{len(shots) + 1:02d}-{name}.png"
                page.screenshot(path=str(path), full_page=True)
                shots.append(path)
                if section:
                    page.locator(section).screenshot(path=str(path.with_suffix(".section.png")))
                assert SECRET not in page.content(), f"the secret is on the page ({name})"

            # -- log in -------------------------------------------------------------------
            page.goto(f"{base}/admin/login/?next=/admin/stonks_plugins/plugin/")
            page.fill("#id_username", USER)
            page.fill("#id_password", PASSWORD)
            shot("login")
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/stonks_plugins/plugin/")
            row = page.locator("#result_list tbody tr", has_text="healthy-fixture")
            assert row.locator(".so-badge.so-state-active").count() == 1
            assert row.locator(".so-badge.so-health-healthy").count() == 1
            shot("plugin-list")

            # -- disable a plugin from the list -----------------------------------------
            row.locator("input.action-select").check()
            page.select_option("select[name=action]", "disable_plugins")
            page.click("button[name=index]")
            page.wait_for_load_state()
            row = page.locator("#result_list tbody tr", has_text="healthy-fixture")
            row.locator(".so-badge.so-state-disabled").wait_for()
            assert "Disabled healthy-fixture: now disabled" in page.inner_text(".messagelist")
            other = page.locator("#result_list tbody tr", has_text="config-fixture")
            assert other.locator(".so-badge.so-state-active").count() == 1
            shot("plugin-disabled")

            # -- the config fixture's page: its data shows on the home page first --------
            page.goto(f"{base}/")
            assert "CFG-EUR" in page.content()
            page.goto(f"{base}/admin/stonks_plugins/plugin/")
            page.click("#result_list a:text-is('config-fixture')")
            page.locator("#config_form").wait_for()
            assert page.locator("svg.so-metrics-chart rect.so-bar-calls").count() >= 1
            shot("plugin-page", "#metrics")

            # -- an invalid value: the error is beside its field, nothing is saved -------
            page.fill("[name='credentials.username']", "ana")
            page.fill("[name='credentials.password']", SECRET)
            page.fill("[name='settings.refresh_minutes']", "0")
            page.click("#config_form input[type=submit]")
            page.wait_for_load_state()
            field = page.locator("[data-config-field='settings.refresh_minutes']")
            error = field.locator(".errorlist")
            error.wait_for()
            assert "less than the minimum of 1" in error.inner_text()
            assert "$.settings.refresh_minutes" in error.inner_text()
            assert page.locator("[data-config-field='settings.currency'] .errorlist").count() == 0
            assert page.locator("[data-config-version='0']").count() == 1  # nothing saved
            # The typed secret is not sent back to the browser.
            assert page.locator("[name='credentials.password']").input_value() == ""
            shot("config-invalid", "#config")

            # -- a valid one: the new version is shown, active ---------------------------
            page.fill("[name='credentials.password']", SECRET)
            page.fill("[name='settings.refresh_minutes']", "15")
            page.select_option("[name='settings.currency']", "USD")
            page.click("#config_form input[type=submit]")
            page.wait_for_load_state()
            page.locator("[data-config-version='1']").wait_for()
            assert page.locator("[data-config-status='active']").count() == 1
            messages = page.inner_text(".messagelist")
            assert "Saved config version 1" in messages and "active" in messages
            assert page.locator("[name='credentials.password']").input_value() == "********"
            shot("config-saved", "#config")

            page.goto(f"{base}/")
            assert "CFG-USD" in page.content()  # applied: the plugin's data follows

            page.goto(f"{base}/admin/stonks_plugins/plugin/overview/")
            page.locator(".so-cards [data-state='disabled'] .so-card-count").wait_for()
            assert page.locator("[data-state='disabled'] .so-card-count").inner_text() == "1"
            # config-fixture, and the legacy broker ibkr (a plugin row with source legacy)
            assert page.locator("[data-state='active'] .so-card-count").inner_text() == "2"
            shot("overview")
        finally:
            browser.close()

    rows = stack.plugins_json()
    assert rows["healthy-fixture"]["state"] == "disabled"
    assert all(p.stat().st_size > 10_000 for p in shots), shots
    assert "Traceback" not in _log(stack), _log(stack)


@pytest.fixture
def dutch_site(stack):  # type: ignore[no-untyped-def]
    """The stack's processes run with LANGUAGE_CODE=nl (ask for it before console_server)."""
    stack.env["LANGUAGE_CODE"] = "nl"
    return stack


def test_the_console_is_dutch_with_language_code_nl(
    sync_playwright,
    dutch_site,
    console_server,
    stack,  # type: ignore[no-untyped-def]
) -> None:
    """A browser asking for English gets the site's language the operator set: the login
    page, the plugin list and a plugin page in Dutch. (DOM text, not
    rendered text: the admin's CSS upper-cases some of it.)"""
    folder = ARTIFACTS / "nl"
    folder.mkdir(parents=True, exist_ok=True)
    base = console_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/admin/login/?next=/admin/stonks_plugins/plugin/")
            assert page.locator("html").get_attribute("lang") == "nl"
            page.fill("#id_username", USER)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/stonks_plugins/plugin/")
            assert page.locator("button[data-action=sync]").text_content() == "Nu synchroniseren"
            assert page.locator(".so-overview-link").text_content() == "Console-overzicht"
            row = page.locator("#result_list tbody tr", has_text="healthy-fixture")
            assert row.locator(".so-badge.so-state-active").text_content() == "actief"
            assert row.locator(".so-badge.so-health-healthy").text_content() == "gezond"
            page.screenshot(path=str(folder / "01-plugin-list.png"), full_page=True)

            page.click("#result_list a:text-is('config-fixture')")
            page.locator("#config_form").wait_for()
            assert page.locator("#config-heading").text_content() == "Configuratie"
            assert page.locator("#metrics-heading").text_content() == "Statistieken"
            assert "Ga naar:" in page.inner_text(".so-jump")
            assert page.locator("button[data-action=check_health]").text_content() == (
                "Gezondheid controleren"
            )
            page.screenshot(path=str(folder / "02-plugin-page.png"), full_page=True)
        finally:
            browser.close()
    assert "Traceback" not in _log(stack), _log(stack)
