"""``plugins migrate-legacy NAME --out DIR [--name NEW]``: write a plugin folder for a legacy
broker (see :mod:`stonks_plugins.legacy.migrate`).

Exit status: 0 written; 1 unknown legacy broker or the folder is not empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stonks_plugins.legacy.migrate import MigrationError, migrate_legacy

from . import Adder, Handler, Output, fail


def register(add: Adder) -> dict[str, Handler]:
    p = add("migrate-legacy", "write a plugin folder for a broker of the legacy registry")
    p.add_argument("name", help="the legacy broker, e.g. ibkr")
    p.add_argument("--out", type=Path, required=True, help="the plugin folder to write")
    p.add_argument(
        "--name",
        dest="new_name",
        help="the plugin's name (default NAME-plugin; keep NAME only in 'plugins' mode)",
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
    out.stdout.write(f"wrote plugin '{result.name}' for legacy broker '{result.legacy_name}'")
    for name in result.files:
        out.stdout.write(f"  {result.path / name}")
    for warning in result.warnings:
        out.stderr.write(f"warning: {warning}")
    out.stdout.write(f"next: manage.py plugins validate {result.path}")
