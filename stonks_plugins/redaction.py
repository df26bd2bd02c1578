"""Nothing secret leaves through the API, the console, the CLI or an event.

Event details and health details are free-form JSON written by the engine and by plugins; they
may hold tracebacks and exception messages, which are useful to an operator, and — by
accident — a credential (a config dict in an exception message, ``password=...`` in a URL).
Before any of it is serialised, values under secret-looking keys are masked and
``key=value`` / ``key: value`` pairs with a secret-looking key are scrubbed from text.

The configuration system knows the actual secret values of a plugin; it can pass them as
``secrets`` so that they are replaced wherever they appear, whatever the key. It also hands
over (:func:`remember`) every value it decrypts or reads from the environment for a plugin,
so that text is scrubbed of them even where the caller has no plugin at hand: :func:`scrub_text` and
:func:`redact` always mask every value this process knows, and once one is known the log
records of the process are scrubbed too (a plugin's exception message is logged by code that
knows no secrets). A secret shorter than four characters is not masked in free text: it would
mask every word that contains it.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

MASK = "********"

# Words that make a key secret. In free text only the longer ones are used ("pin" would hit
# "spinning=3").
_TEXT_WORDS = (
    r"password|passphrase|passwd|secret|token|api[_-]?key|apikey|private[_-]?key|access[_-]?key"
    r"|secret[_-]?key|credential|authorization|cookie|session[_-]?id"
)
_KEY_WORDS = rf"{_TEXT_WORDS}|pwd|auth[_-]?header|otp|totp|pin"


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """The secret key, the ``key=value`` pair, the password in a URL and the credential after
    an auth scheme. Compiled on first use, not at import: every process imports this module
    at start-up (through ``errors``), few scrub text before they serve, and the four cost
    most of a millisecond to compile."""
    secret_key = re.compile(rf"(^|[_\-.\s])({_KEY_WORDS})s?($|[_\-.\s])", re.IGNORECASE)
    secret_pair = re.compile(
        # The key ends with the secret word ("db_password", "X-Auth-Token"): a name that only
        # starts with one ("plugin 'secret-server': ...", "token_count: 3") is no key of a
        # secret.
        rf"""(?P<key>\b[\w.-]*(?:{_TEXT_WORDS})s?)(?P<sep>['"]?\s*[=:]\s*)"""
        r"""(?P<quote>['"]?)(?P<value>[^\s'",;&)}\]]+)""",
        re.IGNORECASE,
    )
    url_password = re.compile(r"(?P<prefix>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)(?P<pw>[^\s@/]+)(?=@)")
    auth_scheme = re.compile(r"\b(?P<scheme>Bearer|Token|Basic)\s+[A-Za-z0-9._~+/=-]{8,}")
    return secret_key, secret_pair, url_password, auth_scheme


MIN_MASKED = 4
"""Shorter secret values are not replaced in free text."""

_lock = threading.Lock()
_known: dict[str, frozenset[str]] = {}
_all: tuple[str, ...] = ()
_source: Callable[[str], Iterable[str]] | None = None
_factory_installed = False


def remember(plugin: str, values: Iterable[Any]) -> None:
    """Add ``values`` to the secrets of ``plugin`` this process masks. Values are never
    forgotten: an old password is still a password."""
    global _all
    new = frozenset(str(v) for v in values if v is not None and len(str(v)) >= MIN_MASKED)
    with _lock:
        old = _known.get(plugin, frozenset())
        if new <= old:
            return
        _known[plugin] = old | new
        # Longest first: a secret that contains another is masked whole.
        _all = tuple(sorted(set().union(*_known.values()), key=len, reverse=True))
    _install_log_scrubber()


def known_secrets(plugin: str | None = None) -> tuple[str, ...]:
    """The secret values this process knows: of one plugin, or of every plugin."""
    if plugin is None:
        return _all
    return tuple(sorted(_known.get(plugin, ()), key=len, reverse=True))


def provide(source: Callable[[str], Iterable[str]]) -> None:
    """Set where :func:`plugin_secrets` reads a plugin's secret values from (the config
    system sets it: this module imports nothing of the plugin system)."""
    global _source
    _source = source


def plugin_secrets(plugin: str) -> tuple[str, ...]:
    """The secret values of ``plugin``: what the config system says now, and what this
    process has seen before."""
    if _source is not None:
        remember(plugin, _source(plugin))
    return known_secrets(plugin)


def forget_all() -> None:
    """For tests: a process that knows no secret."""
    global _all
    with _lock:
        _known.clear()
        _all = ()


def _replace_known(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if value and len(value) >= MIN_MASKED and value in text:
            text = text.replace(value, MASK)
    return text


def mask_known(value: Any) -> Any:
    """``value`` (text, or JSON-like) with every secret value this process knows replaced in
    its strings, and nothing else changed."""
    known = _all
    if not known:
        return value
    if isinstance(value, str):
        return _replace_known(value, known)
    if isinstance(value, dict):
        return {k: mask_known(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_known(v) for v in value)
    return value


def _install_log_scrubber() -> None:
    """Scrub every log record of this process from the moment a secret is known: plugin
    error text reaches the log through many modules, none of which know the secrets."""
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
        previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _all:
            _scrub_record(record)
        return record

    logging.setLogRecordFactory(factory)


def _scrub_record(record: logging.LogRecord) -> None:
    known = _all
    try:
        message = record.getMessage()
    except Exception:  # a bad format string is the logging module's to report
        return
    scrubbed = _replace_known(message, known)
    if scrubbed != message:
        record.msg, record.args = scrubbed, ()
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None and _mentions(exc, known):
        # The traceback is formatted now, scrubbed; formatters use exc_text when it is set.
        text = "".join(traceback.format_exception(exc)).rstrip("\n")
        record.exc_text = _replace_known(text, known)


def _mentions(exc: BaseException, known: tuple[str, ...]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        if any(value in text for value in known):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_secret_key(key: str) -> bool:
    """``password``, ``api_key``, ``client_secret``, ``X-Auth-Token``... A harmless key that
    matches (``token_count``) is masked too: that is the cheaper mistake."""
    return bool(_patterns()[0].search(key))


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask ``secret=value`` pairs, passwords in URLs, ``secrets`` and every secret value
    this process knows."""
    text = _replace_known(text, sorted({*secrets, *_all}, key=len, reverse=True))
    _, secret_pair, url_password, auth_scheme = _patterns()
    text = url_password.sub(lambda m: m.group("prefix") + MASK, text)
    text = auth_scheme.sub(lambda m: f"{m.group('scheme')} {MASK}", text)
    return secret_pair.sub(
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
