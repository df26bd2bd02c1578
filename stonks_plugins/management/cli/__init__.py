"""The ``plugins`` command's subcommands, one module per family; each module's
``register(add)`` declares its subcommands and returns their handlers. Handlers only parse,
call the manager and print: no logic lives here."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

from django.utils.translation import gettext

ACTOR = "cli"


class Failed(Exception):
    """The command ran and the thing failed: exit 1."""


class Output(Protocol):
    stdout: Any
    stderr: Any

    def emit(self, data: Any) -> None: ...


def fail(out: Output, options: dict[str, Any], message: str) -> NoReturn:
    """Report a failure the way every subcommand does: ``{"error": message}`` with
    ``--json``, ``error: message`` on stderr otherwise; then exit 1."""
    if options.get("json"):
        out.emit({"error": message})
        raise Failed("")
    raise Failed(error_line(message))


def error_line(message: str) -> str:
    """``error: message``, in the active language, as every subcommand prints a failure."""
    return gettext("error: %(message)s") % {"message": message}


Handler = Callable[[Output, dict[str, Any]], None]
Adder = Callable[..., ArgumentParser]


def json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=json_default)
