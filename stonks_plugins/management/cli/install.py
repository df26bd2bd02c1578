"""The install subcommands: install, uninstall, purge (see stonks_plugins.install). The work
is the manager's; this module parses and prints. pip's output is printed when pip fails."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from stonks_plugins.install import InstallError
from stonks_plugins.manager import manager

from . import ACTOR, Adder, Failed, Handler, Output, error_line


def register(add: Adder) -> dict[str, Handler]:
    p = add(
        "install",
        gettext("pip install a plugin (wheel, source folder or requirement), then sync"),
    )
    p.add_argument(
        "target", help=gettext("a .whl file, a source folder, or a requirement (name==1.0)")
    )
    p.add_argument(
        "--upgrade",
        action="store_true",
        help=gettext("upgrade it (and its dependencies) if installed"),
    )
    p = add(
        "uninstall", gettext("pip uninstall the distribution that provides a plugin, then sync")
    )
    p.add_argument("name")
    p = add("purge", gettext("delete the rows of a plugin that is gone (or never ran)"))
    p.add_argument("name")
    p.add_argument(
        "--keep-config",
        action="store_true",
        help=gettext(
            "keep the row and its config versions for a reinstall; delete only the history"
        ),
    )
    return {"install": do_install, "uninstall": do_uninstall, "purge": do_purge}


def _refused(out: Output, options: dict[str, Any], exc: InstallError) -> Failed:
    if options["json"]:
        out.emit(exc.as_dict())
        return Failed("")
    if exc.output:
        out.stderr.write(gettext("pip said:") + f"\n{exc.output}\n")
    return Failed(error_line(exc.message))


def _plugin_line(p: dict[str, Any]) -> str:
    error = p["error"]
    why = f" — {error['code']}: {error['message']}" if error else ""
    return f"  {p['name']} {p['version']}: {p['state']}{why}"


def do_install(out: Output, options: dict[str, Any]) -> None:
    try:
        result = manager.install(options["target"], actor=ACTOR, upgrade=options["upgrade"])
    except InstallError as exc:
        raise _refused(out, options, exc) from None
    if options["json"]:
        out.emit(result.as_dict())
    else:
        for dist in result.distributions:
            values = {"name": dist.name, "version": dist.version, "previous": dist.previous}
            if dist.previous and dist.previous != dist.version:
                text = gettext("installed %(name)s %(version)s (was %(previous)s)")
            else:
                text = gettext("installed %(name)s %(version)s")
            out.stdout.write(text % values)
        if not result.distributions:
            text = gettext("%(target)s: already installed; nothing new")
            out.stdout.write(text % {"target": result.target})
        for p in result.plugins:
            out.stdout.write(_plugin_line(p))
    if not result.ok:
        raise Failed(
            "" if options["json"] else error_line(gettext("installed, but a plugin is in error"))
        )


def do_uninstall(out: Output, options: dict[str, Any]) -> None:
    try:
        result = manager.uninstall(options["name"], actor=ACTOR)
    except InstallError as exc:
        raise _refused(out, options, exc) from None
    if options["json"]:
        out.emit(result.as_dict())
        return
    out.stdout.write(gettext("uninstalled %(name)s") % {"name": result.distribution})
    for p in result.plugins:
        text = gettext("%(name)s: missing, config kept ('plugins purge' deletes it)")
        out.stdout.write("  " + text % {"name": p["name"]})


def do_purge(out: Output, options: dict[str, Any]) -> None:
    try:
        result = manager.purge(options["name"], actor=ACTOR, keep_config=options["keep_config"])
    except InstallError as exc:
        raise _refused(out, options, exc) from None
    if options["json"]:
        out.emit(result.as_dict())
        return
    counts = ", ".join(f"{n} {label}" for label, n in sorted(result.deleted.items()))
    values = {"name": result.name, "counts": counts or gettext("nothing else")}
    if result.config_kept:
        text = gettext("purged %(name)s: row and config kept; deleted %(counts)s")
    else:
        text = gettext("purged %(name)s: row and config deleted; deleted %(counts)s")
    out.stdout.write(text % values)
    if result.present:
        text = gettext("%(name)s is still present: the next sync records it again")
        out.stdout.write(text % {"name": result.name})
