"""Issue 13, reproduction 10: with DEBUG off, ``manage.py check --deploy`` fails while
SECRET_KEY is the repository's placeholder or PLUGINS_SECRET_KEY is unset (derived from
SECRET_KEY) or a placeholder, and passes with real keys; the plain checks that ``runserver``
(``make run``) runs are not affected."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

REPO_SECRET_KEY = "insecure-dev-key-change-me-in-production-0123456789"
# Fixed, not generated: test ids must be the same in every xdist worker.
REAL_SECRET_KEY = "k" * 8 + "Zq3vR9tLw2yXb7NcH4mPd6sJf1GuK0eTa5oBiVxY8hQnWrEzCl"
REAL_FERNET = "a7Vn3kQ0p2XwL9mR4tY6bC8dF1gH5jK0sZ3xN7vB2qE="
# Django's own deploy checks (HSTS, secure cookies, ...) are satisfied, so that what fails is
# ours alone.
HARDENED = {
    "DEBUG": False,
    "SECURE_HSTS_SECONDS": 31536000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
    "SECURE_SSL_REDIRECT": True,
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
}


def deploy_check() -> str:
    out = io.StringIO()
    call_command("check", "--deploy", "--fail-level", "ERROR", stdout=out, stderr=out)
    return out.getvalue()


def test_repository_defaults_fail_the_deploy_check() -> None:
    with (
        override_settings(**HARDENED, SECRET_KEY=REPO_SECRET_KEY, PLUGINS_SECRET_KEY=""),
        pytest.raises(SystemCheckError) as info,
    ):
        deploy_check()
    text = str(info.value)
    assert "stonks_plugins.E001" in text and "SECRET_KEY" in text
    assert "stonks_plugins.E002" in text and "PLUGINS_SECRET_KEY is not set" in text
    assert "secrets.token_urlsafe" in text  # says how to make one
    assert "Fernet.generate_key" in text


@pytest.mark.parametrize(
    ("secret_key", "plugins_key", "code"),
    [
        ("change-me-to-a-long-random-string", REAL_FERNET, "stonks_plugins.E001"),  # .env.example
        ("", REAL_FERNET, "stonks_plugins.E001"),
        (REAL_SECRET_KEY, "", "stonks_plugins.E002"),  # derived from SECRET_KEY
        (REAL_SECRET_KEY, "change-me-generate-a-fernet-key", "stonks_plugins.E003"),
        (REAL_SECRET_KEY, "not-a-fernet-key", "stonks_plugins.E004"),
    ],
)
def test_each_weak_key_is_named(secret_key: str, plugins_key: str, code: str) -> None:
    with (
        override_settings(**HARDENED, SECRET_KEY=secret_key, PLUGINS_SECRET_KEY=plugins_key),
        pytest.raises(SystemCheckError) as info,
    ):
        deploy_check()
    assert code in str(info.value)


def test_real_keys_pass_the_deploy_check() -> None:
    with override_settings(
        **HARDENED,
        SECRET_KEY=REAL_SECRET_KEY,
        PLUGINS_SECRET_KEY=REAL_FERNET,
        PLUGINS_SECRET_KEY_FALLBACKS=[Fernet.generate_key().decode()],
    ):
        out = deploy_check()
    assert "stonks_plugins" not in out


def test_development_is_not_refused() -> None:
    # The checks runserver runs (make run: DEBUG off, repository keys, loopback only) pass,
    # and a DEBUG site is not told twice what Django's own deploy checks say.
    with override_settings(SECRET_KEY=REPO_SECRET_KEY, PLUGINS_SECRET_KEY="", DEBUG=False):
        call_command("check", stdout=io.StringIO())
    with override_settings(
        **{**HARDENED, "DEBUG": True}, SECRET_KEY=REPO_SECRET_KEY, PLUGINS_SECRET_KEY=""
    ):
        out = io.StringIO()
        call_command("check", "--deploy", stdout=out, stderr=out)
    assert "stonks_plugins.E00" not in out.getvalue()
