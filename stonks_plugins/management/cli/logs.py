"""``plugins logs NAME [--json] [--level L] [--limit N]``: what a plugin's code logged, newest
first, as stored (secrets masked). Records still in a serving process's memory appear once
its runtime stores them, within a second or so."""

from __future__ import annotations

import argparse
from typing import Any

from django.utils.translation import gettext

from stonks_plugins.logs.capture import LEVELS
from stonks_plugins.manager import manager

from . import Adder, Handler, Output


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            gettext("must be a whole number of at least 1, not %(value)r") % {"value": text}
        )
    return int(text)


def _level(text: str) -> str:
    if text.upper() not in LEVELS:
        raise argparse.ArgumentTypeError(
            gettext("%(value)r is not one of %(levels)s")
            % {"value": text, "levels": ", ".join(LEVELS)}
        )
    return text.upper()


def register(add: Adder) -> dict[str, Handler]:
    p = add("logs", gettext("a plugin's log records, newest first (secrets masked)"))
    p.add_argument("name")
    p.add_argument(
        "--level",
        type=_level,
        help=gettext("only records at this level or above (%(levels)s)")
        % {"levels": ", ".join(LEVELS)},
    )
    p.add_argument(
        "--limit", type=_positive, default=50, help=gettext("at most this many (default 50)")
    )
    return {"logs": do_logs}


def do_logs(out: Output, options: dict[str, Any]) -> None:
    level = options["level"]
    least = LEVELS[level] if level else None
    rows = [r.as_dict() for r in manager.logs(options["name"], least)[: options["limit"]]]
    if options["json"]:
        out.emit(rows)
        return
    for r in rows:
        out.stdout.write(
            f"{r['at']:%Y-%m-%d %H:%M:%S} {r['level']:<8} {r['logger']}: {r['message']}"
        )
        for line in r["exc_text"].splitlines():
            out.stdout.write(f"    {line}")
