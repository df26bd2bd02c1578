"""Nothing secret leaves through the API, the console, the CLI or an event.

Event details and health details are free-form JSON written by the engine and by plugins; they
may hold tracebacks and exception messages, which are useful to an operator, and — by
accident — a credential (a config dict in an exception message, ``password=...`` in a URL).
Before any of it is serialised, values under secret-looking keys are masked and
``key=value`` / ``key: value`` pairs with a secret-looking key are scrubbed from text.

The configuration system knows the actual secret values of a plugin; it can pass them as
``secrets`` so that they are replaced wherever they appear, whatever the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "********"

# Words that make a key secret. In free text only the longer ones are used ("pin" would hit
# "spinning=3").
_TEXT_WORDS = (
    r"password|passphrase|passwd|secret|token|api[_-]?key|apikey|private[_-]?key|access[_-]?key"
    r"|credential|authorization|cookie|session[_-]?id"
)
_KEY_WORDS = rf"{_TEXT_WORDS}|pwd|auth[_-]?header|otp|totp|pin"
_SECRET_KEY = re.compile(rf"(^|[_\-.\s])({_KEY_WORDS})s?($|[_\-.\s])", re.IGNORECASE)
_SECRET_PAIR = re.compile(
    rf"""(?P<key>\b[\w.-]*(?:{_TEXT_WORDS})[\w.-]*)(?P<sep>['"]?\s*[=:]\s*)"""
    r"""(?P<quote>['"]?)(?P<value>[^\s'",;&)}\]]+)""",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<prefix>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)(?P<pw>[^\s@/]+)(?=@)")
_AUTH_SCHEME = re.compile(r"\b(?P<scheme>Bearer|Token|Basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def is_secret_key(key: str) -> bool:
    """``password``, ``api_key``, ``client_secret``, ``X-Auth-Token``... A harmless key that
    matches (``token_count``) is masked too: that is the cheaper mistake."""
    return bool(_SECRET_KEY.search(key))


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask ``secret=value`` pairs, passwords in URLs and any known secret value."""
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group("prefix") + MASK, text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group('scheme')} {MASK}", text)
    return _SECRET_PAIR.sub(
        lambda m: f"{m.group('key')}{m.group('sep')}{m.group('quote')}{MASK}", text
    )


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of JSON-like ``value`` with secret-looking keys masked and text scrubbed."""
    known = tuple(secrets)
    return _redact(value, known)


def _redact(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if is_secret_key(name) and item not in (None, "") and not isinstance(item, dict | list):
                out[name] = MASK
            else:
                out[name] = _redact(item, secrets)
        return out
    if isinstance(value, list | tuple):
        return [_redact(item, secrets) for item in value]
    if isinstance(value, str):
        return scrub_text(value, secrets)
    return value
