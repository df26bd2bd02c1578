"""The install subcommands: install, uninstall, purge (see stonks_plugins.install). The work
is the manager's; this module parses and prints. pip's output is printed when pip fails."""

from __future__ import annotations

from typing import Any

from stonks_plugins.install import InstallError
from stonks_plugins.manager import manager

from . import ACTOR, Adder, Failed, Handler, Output


def register(add: Adder) -> dict[str, Handler]:
    p = add("install", "pip install a plugin (wheel, source folder or requirement), then sync")
    p.add_argument("target", help="a .whl file, a source folder, or a requirement (name==1.0)")
    p.add_argument(
        "--upgrade", action="store_true", help="upgrade it (and its dependencies) if installed"
    )
    p = add("uninstall", "pip uninstall the distribution that provides a plugin, then sync")
    p.add_argument("name")
    p = add("purge", "delete the rows of a plugin that is gone (or never ran)")
    p.add_argument("name")
    p.add_argument(
        "--keep-config",
        action="store_true",
        help="keep the row and its config versions for a reinstall; delete only the history",
    )
    return {"install": do_install, "uninstall": do_uninstall, "purge": do_purge}


def _refused(out: Output, options: dict[str, Any], exc: InstallError) -> Failed:
    if options["json"]:
        out.emit(exc.as_dict())
        return Failed("")
    if exc.output:
        out.stderr.write(f"pip said:\n{exc.output}\n")
    return Failed(f"error: {exc.message}")


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
            was = (
                f" (was {dist.previous})" if dist.previous and dist.previous != dist.version else ""
            )
            out.stdout.write(f"installed {dist.name} {dist.version}{was}")
        if not result.distributions:
            out.stdout.write(f"{result.target}: already installed; nothing new")
        for p in result.plugins:
            out.stdout.write(_plugin_line(p))
    if not result.ok:
        raise Failed("" if options["json"] else "error: installed, but a plugin is in error")


def do_uninstall(out: Output, options: dict[str, Any]) -> None:
    try:
        result = manager.uninstall(options["name"], actor=ACTOR)
    except InstallError as exc:
        raise _refused(out, options, exc) from None
    if options["json"]:
        out.emit(result.as_dict())
        return
    out.stdout.write(f"uninstalled {result.distribution}")
    for p in result.plugins:
        out.stdout.write(f"  {p['name']}: missing, config kept ('plugins purge' deletes it)")


def do_purge(out: Output, options: dict[str, Any]) -> None:
    try:
        result = manager.purge(options["name"], actor=ACTOR, keep_config=options["keep_config"])
    except InstallError as exc:
        raise _refused(out, options, exc) from None
    if options["json"]:
        out.emit(result.as_dict())
        return
    counts = ", ".join(f"{n} {label}" for label, n in sorted(result.deleted.items()))
    kept = "row and config kept" if result.config_kept else "row and config deleted"
    out.stdout.write(f"purged {result.name}: {kept}; deleted {counts or 'nothing else'}")
    if result.present:
        out.stdout.write(f"{result.name} is still present: the next sync records it again")
