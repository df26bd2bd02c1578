"""``plugins migrate-legacy NAME --out DIR [--name NEW]``: write a plugin folder for a legacy
broker (see :mod:`stonks_plugins.legacy.migrate`).

Exit status: 0 written; 1 unknown legacy broker or the folder is not empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.utils.translation import gettext

from stonks_plugins.legacy.migrate import MigrationError, migrate_legacy

from . import Adder, Handler, Output, fail


def register(add: Adder) -> dict[str, Handler]:
    p = add("migrate-legacy", gettext("write a plugin folder for a broker of the legacy registry"))
    p.add_argument("name", help=gettext("the legacy broker, e.g. ibkr"))
    p.add_argument("--out", type=Path, required=True, help=gettext("the plugin folder to write"))
    p.add_argument(
        "--name",
        dest="new_name",
        help=gettext("the plugin's name (default NAME-plugin; keep NAME only in 'plugins' mode)"),
    )
    return {"migrate-legacy": do_migrate}


def do_migrate(out: Output, options: dict[str, Any]) -> None:
    try:
        result = migrate_legacy(options["name"], options["out"], options["new_name"])
    except MigrationError as exc:
        fail(out, options, str(exc))
    if options["json"]:
        out.emit(result.as_dict())
        return
    text = gettext("wrote plugin '%(name)s' for legacy broker '%(legacy)s'")
    out.stdout.write(text % {"name": result.name, "legacy": result.legacy_name})
    for name in result.files:
        out.stdout.write(f"  {result.path / name}")
    for warning in result.warnings:
        out.stderr.write(gettext("warning: %(warning)s") % {"warning": warning})
    text = gettext("next: manage.py plugins validate %(path)s")
    out.stdout.write(text % {"path": result.path})
