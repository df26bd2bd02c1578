"""Running ``manage.py plugins ...`` in a test, in-process, as an operator would."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError


def cli(*args: str) -> tuple[int, str, str]:
    """``manage.py plugins ARGS``: (exit status, stdout, stderr). A usage error that
    ``call_command``'s own parser raises (``CommandError``) propagates; any other exception
    (a traceback for the operator) fails the test."""
    out, err = StringIO(), StringIO()
    try:
        call_command("plugins", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def cli_exit(*args: str) -> tuple[int, str, str]:
    """:func:`cli`, with a usage error turned into its exit status and message, as
    ``manage.py`` itself does."""
    try:
        return cli(*args)
    except CommandError as exc:
        return exc.returncode, "", str(exc)


def cli_json(*args: str) -> tuple[int, Any]:
    """``manage.py plugins ARGS --json``: (exit status, the parsed output)."""
    code, out, _ = cli(*args, "--json")
    return code, json.loads(out)
