"""Catching a plugin's log records as they are logged, into a bounded buffer per plugin.

Which records are a plugin's: those logged on its own logger,
``stonks_plugins.plugin.<slug>`` (``BasePlugin.logger``, ``PluginContext.logger``,
``sdk.plugin_logger(name)``), and those its modules log with a plain
``logging.getLogger(__name__)``: a directory plugin's modules import under its package
(``_stonks_plugin_pkgs.<slug>``), an installed one's under its top-level package, so one
handler on that logger catches them all. The slug is :mod:`..module_names`' injective
spelling, free of dots: a plugin named ``acme`` never catches the records of ``acme.broker``.
Records are kept under the name the plugin was loaded as - its row's name, so an instance
``NAME:LABEL`` has logs of its own. (An installed plugin's instances share its package: the
records logged under it go to whichever of them was loaded first.)

Records still reach the host's log as before. When ``PLUGINS_LOG_LEVEL`` is below the level
the host's logging lets through for a logger, the logger's level is lowered so the handler
sees those records, and the handler passes on to the host's handlers only what they would
have seen (it takes the logger's propagation over rather than adding to it).

The buffers hold raw text, cut with a margin: masking needs the plugin's configured secrets,
read where the records are stored (:mod:`.store`), and a secret must not be cut in two before
it is masked. Each buffer keeps the newest ``PLUGINS_LOG_RECORDS`` records. Standard library
only: the child of a process-isolated plugin captures with this module too.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..module_names import plugin_slug

NAMESPACE = "stonks_plugins.plugin"
"""Parent of every plugin's own logger."""
MESSAGE_CHARS = 4000
"""A stored message is cut to this many characters (after masking)."""
EXC_CHARS = 16000
"""A stored traceback keeps its last this many characters (after masking)."""
MARGIN = 8192
"""Extra characters buffered beyond the stored size, so a secret cut at the buffer's bound
lies wholly in the part the final cut drops."""
DEFAULT_LEVEL = logging.INFO
DEFAULT_RECORDS = 200
LEVELS: Mapping[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
HOST_PACKAGES = frozenset({"stonks_plugins", "stonks_overwatch", "django", "celery"})
"""Top-level packages that are never a plugin's code: a handler there would keep the host's
own records as the plugin's."""

Settings = Callable[[], tuple[int, int]]
"""Returns (least level kept, records kept per plugin)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One record as kept: plain data (it crosses from a plugin's child process)."""

    at: float
    """``time.time()`` when it was logged."""
    level: int
    logger: str
    message: str
    exc_text: str = ""
    pid: int = 0

    def as_tuple(self) -> tuple[float, int, str, str, str, int]:
        return (self.at, self.level, self.logger, self.message, self.exc_text, self.pid)


def plugin_logger(name: str) -> logging.Logger:
    """The logger of plugin ``name`` (a row's name: ``NAME`` or ``NAME:LABEL``)."""
    return logging.getLogger(f"{NAMESPACE}.{plugin_slug(name)}")


def parse_level(value: object) -> int:
    """A level setting as a number: ``"INFO"``, ``"info"``, ``20`` or ``"20"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    number = LEVELS.get(text, logging.getLevelName(text))
    if isinstance(number, int):
        return number
    raise ValueError(f"unknown log level {value!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")


def level_name(level: int) -> str:
    """The standard level at or below ``level`` (a custom 25 reads INFO, 5 reads DEBUG)."""
    found = "DEBUG"
    for name, number in LEVELS.items():
        if level >= number:
            found = name
    return found


def head(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tail(text: str, limit: int) -> str:
    """The last ``limit`` characters of ``text`` (a traceback ends with what matters)."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


# -- settings ------------------------------------------------------------------------------

_source: Settings | None = None
_fixed: tuple[int, int] = (DEFAULT_LEVEL, DEFAULT_RECORDS)


def configure(
    source: Settings | None = None, *, level: int | None = None, records: int | None = None
) -> None:
    """Where the least level and the bound come from: ``source`` is asked each time (the
    host reads its settings, so a test's override applies); else fixed values (the child of
    a process-isolated plugin, which has no settings, gets the host's level)."""
    global _source, _fixed
    _source = source
    _fixed = (
        DEFAULT_LEVEL if level is None else level,
        DEFAULT_RECORDS if records is None else records,
    )


def settings() -> tuple[int, int]:
    """(least level kept, records kept per plugin)."""
    if _source is not None:
        try:
            return _source()
        except Exception:  # settings not ready, or a bad value: the defaults keep working
            pass
    return _fixed


def level() -> int:
    return settings()[0]


# -- the buffers ---------------------------------------------------------------------------

_lock = threading.Lock()  # guards _buffers; never held while logging or calling out
_buffers: dict[str, deque[Entry]] = {}


def _append(plugin: str, entries: Iterable[Entry]) -> None:
    limit = max(1, settings()[1])
    with _lock:
        buffer = _buffers.get(plugin)
        if buffer is None or buffer.maxlen != limit:
            buffer = _buffers[plugin] = deque(buffer or (), maxlen=limit)
        buffer.extend(entries)


def pending() -> bool:
    """Whether any record waits to be stored (no lock: a cheap look for the flush)."""
    return bool(_buffers)


def take() -> dict[str, list[Entry]]:
    """Every buffered record by plugin, oldest first; the buffers start empty again."""
    global _buffers
    with _lock:
        taken, _buffers = _buffers, {}
    return {plugin: list(buffer) for plugin, buffer in taken.items()}


def restore(batches: Mapping[str, list[Entry]]) -> None:
    """Put back records that could not be stored, before those logged since (the newest
    are kept when that is more than the bound)."""
    limit = max(1, settings()[1])
    with _lock:
        for plugin, entries in batches.items():
            newer = _buffers.get(plugin, ())
            _buffers[plugin] = deque([*entries, *newer], maxlen=limit)


def feed(plugin: str, entries: Iterable[Entry]) -> None:
    """Keep records logged elsewhere for ``plugin`` (by its child process)."""
    least = level()
    kept = [e for e in entries if e.level >= least]
    if kept:
        _append(plugin, kept)


def clear() -> None:
    """Forget every buffered record (tests)."""
    with _lock:
        _buffers.clear()


# -- the handler ---------------------------------------------------------------------------

_formatter = logging.Formatter()


def entry_of(record: logging.LogRecord) -> Entry:
    """The record as kept: its message and traceback rendered now (its arguments may
    change later), cut to the buffer's bound."""
    try:
        message = record.getMessage()
    except Exception as exc:  # a format string that does not fit its arguments
        message = f"{record.msg!r} (its arguments do not fit it: {type(exc).__name__})"
    exc_text = ""
    if record.exc_info and record.exc_info[0] is not None:
        exc_text = _formatter.formatException(record.exc_info)
    elif record.exc_text:
        exc_text = record.exc_text
    if record.stack_info:
        exc_text = f"{exc_text}\n{record.stack_info}" if exc_text else record.stack_info
    return Entry(
        at=record.created,
        level=record.levelno,
        logger=record.name,
        message=head(message, MESSAGE_CHARS + MARGIN),
        exc_text=tail(exc_text, EXC_CHARS + MARGIN),
        pid=record.process or os.getpid(),
    )


class _Handler(logging.Handler):
    """Keeps a plugin's records; with ``forward_to`` (the parent of the logger whose
    propagation it took over), also passes on those the host would have seen: at or above
    the logger's own former level, or else its parent's level as it is now."""

    def __init__(
        self, plugin: str, least: int, forward_to: logging.Logger | None, own_level: int
    ) -> None:
        super().__init__(least)
        self.plugin = plugin
        self.forward_to = forward_to
        self.own_level = own_level

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: the buffer has its own, and passing a record on to other
        # handlers must not happen under one of ours.
        kept = bool(self.filter(record))
        if kept:
            self.emit(record)
        to = self.forward_to
        if to is not None and record.levelno >= (self.own_level or to.getEffectiveLevel()):
            to.callHandlers(record)
        return kept

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = entry_of(record)
        except Exception:
            self.handleError(record)
            return
        _append(self.plugin, (entry,))


@dataclass
class _Attachment:
    logger: logging.Logger
    handler: _Handler
    level: int
    propagate: bool


class Capture:
    """What one load of a plugin attached: the handle :func:`detach` takes."""

    def __init__(self) -> None:
        self.attachments: list[_Attachment] = []

    @property
    def loggers(self) -> list[str]:
        return [a.logger.name for a in self.attachments]


_attach_lock = threading.Lock()
_attached: dict[str, Capture] = {}
_owners: dict[str, str] = {}  # logger name -> the plugin its records are kept for


def code_logger_allowed(name: str) -> bool:
    """Whether a handler may sit on the top-level package ``name`` as a plugin's code."""
    return bool(name) and name not in HOST_PACKAGES and name not in sys.stdlib_module_names


def attach(plugin: str, logger_names: Iterable[str]) -> Capture:
    """Keep the records of ``plugin``'s loggers from now on (afresh: a reload attaches
    again). A logger whose records are kept for another plugin stays with it. Returns the
    handle of what was attached, for :func:`detach`."""
    least = level()
    with _attach_lock:
        _detach_locked(plugin)
        done = Capture()
        for name in dict.fromkeys(logger_names):
            if not name or _owners.get(name, plugin) != plugin:
                continue
            log = logging.getLogger(name)
            own_level, propagate = log.level, log.propagate
            host_level = log.getEffectiveLevel()
            forward_to: logging.Logger | None = None
            if least < host_level:
                log.setLevel(least)
                if propagate and log.parent is not None:
                    log.propagate = False
                    forward_to = log.parent
            handler = _Handler(plugin, least, forward_to, own_level)
            log.addHandler(handler)
            _owners[name] = plugin
            done.attachments.append(_Attachment(log, handler, own_level, propagate))
        _attached[plugin] = done
        return done


def detach(plugin: str, handle: Capture | None = None) -> None:
    """Stop keeping ``plugin``'s records; its loggers are as they were before. With
    ``handle``, only if that load's attachments are still the plugin's: the shutdown of an
    old load, finishing on a background thread, must not detach the load that replaced it."""
    with _attach_lock:
        if handle is None or _attached.get(plugin) is handle:
            _detach_locked(plugin)


def attached(plugin: str) -> list[str]:
    with _attach_lock:
        handle = _attached.get(plugin)
        return handle.loggers if handle is not None else []


def _detach_locked(plugin: str) -> None:
    handle = _attached.pop(plugin, None)
    for a in handle.attachments if handle is not None else ():
        a.logger.removeHandler(a.handler)
        a.logger.setLevel(a.level)
        a.logger.propagate = a.propagate
        _owners.pop(a.logger.name, None)
