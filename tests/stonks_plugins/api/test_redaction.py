"""Secrets never leave through the API: masking by key, scrubbing of text."""

from __future__ import annotations

from stonks_plugins.redaction import MASK, is_secret_key, redact, scrub_text


def test_secret_keys() -> None:
    for key in ("password", "API_KEY", "client_secret", "X-Auth-Token", "session_id", "pin"):
        assert is_secret_key(key), key
    for key in ("username", "host", "timeout", "spinner", "description", "services"):
        assert not is_secret_key(key), key


def test_redact_masks_values_under_secret_keys_at_any_depth() -> None:
    data = {
        "username": "bob",
        "password": "hunter2",
        "nested": {"list": [{"api_key": "AKIA123"}], "count": 3},
        "required_credentials": ["username", "password"],  # names, not values
        "token": None,
    }
    assert redact(data) == {
        "username": "bob",
        "password": MASK,
        "nested": {"list": [{"api_key": MASK}], "count": 3},
        "required_credentials": ["username", "password"],
        "token": None,
    }
    assert data["password"] == "hunter2"  # a copy: the stored row is untouched


def test_scrub_text() -> None:
    text = (
        "login failed: password=hunter2; {'secret': 's3'} "
        "postgres://app:pa55word@db:5432/x Authorization: Bearer abcdefghijklmnop"
    )
    clean = scrub_text(text)
    for secret in ("hunter2", "'s3'", "pa55word", "abcdefghijklmnop"):
        assert secret not in clean
    assert "login failed" in clean and "postgres://app:" in clean
    assert scrub_text("value is sup3rs3cret!", secrets=["sup3rs3cret!"]) == f"value is {MASK}"
    assert scrub_text('File "/x/token.py", line 3') == 'File "/x/token.py", line 3'
