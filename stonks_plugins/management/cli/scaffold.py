"""``plugins new NAME --type broker|aggregator|view|middleware [--dir DIR] [--force]``.

Exit status: 0 written; 1 the folder already exists (without ``--force``) or cannot be
written; 2 a bad name or type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext

from stonks_plugins.scaffold import PLUGIN_TYPES, ScaffoldError, create_plugin

from ...conf import plugin_settings
from . import Adder, Handler, Output, fail


def register(add: Adder) -> dict[str, Handler]:
    p = add(
        "new", gettext("write a new plugin (manifest, package, config schema, tests, pyproject)")
    )
    p.add_argument("name", help=gettext("the plugin's name, e.g. acme-broker"))
    p.add_argument(
        "--type",
        dest="plugin_type",
        default="broker",
        metavar="TYPE",
        help=gettext("one of %(types)s (default: broker)") % {"types": ", ".join(PLUGIN_TYPES)},
    )
    p.add_argument(
        "--dir",
        dest="directory",
        type=Path,
        help=gettext("folder to create the plugin in (default: the first PLUGIN_DIRS entry)"),
    )
    p.add_argument(
        "--force",
        action="store_true",
        help=gettext(
            "write over an existing plugin folder (only the generated files are replaced)"
        ),
    )
    return {"new": do_new}


def do_new(out: Output, options: dict[str, Any]) -> None:
    plugin_dirs = plugin_settings.plugin_dirs
    directory = options["directory"] or (plugin_dirs[0] if plugin_dirs else Path("plugins"))
    try:
        result = create_plugin(
            options["name"],
            options["plugin_type"],
            directory,
            force=options["force"],
            plugin_dirs=plugin_dirs,
        )
    except ScaffoldError as exc:
        if exc.exit_code == 2:
            raise CommandError(str(exc), returncode=2) from exc
        fail(out, options, str(exc))
    if options["json"]:
        out.emit(result.as_dict())
        return
    text = gettext("created %(type)s plugin '%(name)s' in %(path)s")
    values = {"type": result.plugin_type, "name": result.name, "path": result.path}
    out.stdout.write(text % values)
    for name in result.files:
        out.stdout.write(f"  {name}")
    for warning in result.warnings:
        out.stderr.write(gettext("warning: %(warning)s") % {"warning": warning})
    out.stdout.write(gettext("next:"))
    for step in result.next_steps():
        out.stdout.write(f"  {step}")
