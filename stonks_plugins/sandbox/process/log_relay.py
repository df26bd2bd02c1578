"""A process-isolated plugin's log records, carried to the host on the replies it sends.

The child captures its plugin's records as the host does in-process
(:mod:`stonks_plugins.logs.capture`, attached by the shared load path) at the host's
``PLUGINS_LOG_LEVEL``, which the host sends in the child's spec. Whatever the child
captured since its last reply rides on the next one: a reply is sent as ``("logs", records,
reply)`` when there are records, else as it is, so the wire stays as it was for a plugin that
logs nothing, and no message or thread is added.
Records a plugin's own threads log between calls wait for the next reply (health checks
come regularly); those of a child that dies (or runs out of memory) are lost with it.

The host takes the records apart before it reads the reply: plain tuples checked field by
field (a plugin's child is not trusted to send what it should), at most as many as a plugin
keeps, each cut to the buffer's bound, then kept for the plugin as if logged in-process.
"""

from __future__ import annotations

from typing import Any

from ...logs import capture

TAG = "logs"


def start_in_child(level: int) -> None:
    """Capture at the host's level in this child (which has no settings of its own)."""
    capture.configure(level=level)


def host_level() -> int:
    """The level the host wants its children to capture at."""
    return capture.level()


def wrap(reply: tuple[Any, ...]) -> tuple[Any, ...]:
    """``reply`` with the records captured since the last one (child side). Not on a
    ``fatal`` reply: a child out of memory sends as little as it can, then exits."""
    if not capture.pending() or reply[0] == "fatal":
        return reply
    batches = capture.take()
    entries = [entry.as_tuple() for batch in batches.values() for entry in batch]
    return (TAG, entries, reply)


def unwrap(plugin: str, reply: tuple[Any, ...]) -> tuple[Any, ...]:
    """The reply itself; records riding on it are kept for ``plugin`` (host side)."""
    if not (isinstance(reply, tuple) and len(reply) == 3 and reply[0] == TAG):
        return reply
    _, raw, inner = reply
    capture.feed(plugin, entries(raw))
    if isinstance(inner, tuple):
        return inner
    return ("err", "", "ValueError", "the plugin's process sent a reply the host cannot read", "")


def entries(raw: object) -> list[capture.Entry]:
    """Well-formed records of ``raw``, the newest the host keeps; anything else is dropped."""
    if not isinstance(raw, list):
        return []
    out: list[capture.Entry] = []
    for item in raw[-capture.settings()[1] :]:
        if not (isinstance(item, tuple) and len(item) == 6):
            continue
        at, level, logger, message, exc_text, pid = item
        if (
            isinstance(at, int | float)
            and type(level) is int
            and type(pid) is int
            and all(type(s) is str for s in (logger, message, exc_text))
        ):
            out.append(
                capture.Entry(
                    at=float(at),
                    level=level,
                    logger=capture.head(logger, 200),
                    message=capture.head(message, capture.MESSAGE_CHARS + capture.MARGIN),
                    exc_text=capture.tail(exc_text, capture.EXC_CHARS + capture.MARGIN),
                    pid=pid,
                )
            )
    return out
