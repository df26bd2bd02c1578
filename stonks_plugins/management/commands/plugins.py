"""``manage.py plugins ...``: a thin shell over :class:`stonks_plugins.manager.PluginManager`.

Exit status: 0 success; 1 the command ran and the thing failed (invalid manifest, unknown or
failing plugin); 2 bad usage. Subcommands live in :mod:`stonks_plugins.management.cli`.
"""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext, gettext_noop

from stonks_plugins.error_texts import error_text
from stonks_plugins.errors import IllegalTransition, PluginNotFound
from stonks_plugins.management.cli import (
    Failed,
    Handler,
    config,
    core,
    dumps,
    fail,
    imports,
    install,
    instances,
    legacy,
    logs,
    scaffold,
    trust,
)

GROUPS = [core, config, imports, scaffold, legacy, trust, instances, install, logs]


HELP = gettext_noop("Discover, inspect, validate, configure, enable and disable plugins.")


class Command(BaseCommand):
    """Its texts are in the active language: ``LANGUAGE_CODE`` (Django leaves a command's
    translations on); ``--json`` keys and codes stay as they are."""

    help = HELP

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = gettext(HELP)  # argparse needs a str, in the language of this run

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

        def add(name: str, help_text: str, json_flag: bool = True) -> ArgumentParser:
            p: ArgumentParser = sub.add_parser(name, help=help_text)
            if json_flag:
                p.add_argument(
                    "--json", action="store_true", help=gettext("machine-readable output")
                )
            return p

        self.handlers: dict[str, Handler] = {}
        for group in GROUPS:
            self.handlers.update(group.register(add))

    def emit(self, data: Any) -> None:
        self.stdout.write(dumps(data))

    def handle(self, *args: Any, **options: Any) -> None:
        if not hasattr(self, "handlers"):  # call_command builds the parser itself
            self.create_parser("manage.py", "plugins")
        try:
            self._run(options)
        except Failed as exc:
            if str(exc):
                self.stderr.write(str(exc))
            sys.exit(1)
        except BrokenPipeError:  # `plugins events | head`
            sys.exit(0)

    def _run(self, options: dict[str, Any]) -> None:
        try:
            self.handlers[options["action"]](self, options)
        except (PluginNotFound, IllegalTransition) as exc:
            fail(self, options, error_text(exc))
