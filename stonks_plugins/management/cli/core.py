"""The core subcommands: sync, list, show, enable, disable, reload, validate, health, events."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import get_language, gettext, ngettext

from stonks_plugins.dependents import HasDependents
from stonks_plugins.manager import ValidationResult, manager
from stonks_plugins.manifest.texts import localized, translations_of
from stonks_plugins.models import Plugin
from stonks_plugins.trust import describe as describe_trust

from . import ACTOR, Adder, Failed, Handler, Output, error_line


def register(add: Adder) -> dict[str, Handler]:
    p = add("sync", gettext("discover plugins and record them in the database"))
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=gettext("show progress on stderr (default: when stderr is a terminal)"),
    )
    p.add_argument(
        "--allow-downgrade",
        action="store_true",
        help=gettext("accept plugins older than the version installed before (refused otherwise)"),
    )
    p = add("list", gettext("list known plugins"))
    p.add_argument("--state", help=gettext("only plugins in this state"))
    p.add_argument("--type", dest="plugin_type", help=gettext("only plugins of this type"))
    p = add("show", gettext("show one plugin in detail"))
    p.add_argument("name")
    for verb, help_text in (
        ("enable", gettext("enable a plugin")),
        ("disable", gettext("disable a plugin")),
        ("reload", gettext("reload a plugin")),
    ):
        p = add(verb, help_text)
        p.add_argument("name")
        if verb == "disable":
            p.add_argument(
                "--force",
                action="store_true",
                help=gettext("disable it even though enabled plugins need it (they go to error)"),
            )
    p = add("validate", gettext("validate a plugin folder, manifest file or known plugin name"))
    p.add_argument("target", nargs="?", help=gettext("PATH or NAME; all discovered when omitted"))
    p = add("health", gettext("run health checks now (exit 1 when any plugin is unhealthy)"))
    p.add_argument("name", nargs="?", help=gettext("one plugin; every enabled plugin when omitted"))
    p = add("events", gettext("recent events"))
    p.add_argument("name", nargs="?")
    p.add_argument("--limit", type=int, default=50)
    return {
        "sync": do_sync,
        "list": do_list,
        "show": do_show,
        "enable": do_enable,
        "disable": do_disable,
        "reload": do_reload,
        "validate": do_validate,
        "health": do_health,
        "events": do_events,
    }


def _progress_printer(out: Output) -> Any:
    """One line rewritten in place: 'syncing 120/1000 name', every 1% or so."""
    last = [-1]

    def show(done: int, total: int, name: str) -> None:
        step = max(1, total // 100)
        if done != total and done - last[0] < step:
            return
        last[0] = done
        end = "\n" if done == total else ""
        step_text = gettext("syncing %(done)d/%(total)d") % {"done": done, "total": total}
        out.stderr.write(f"\r{step_text} {name[:40]:<40}", ending=end)
        out.stderr.flush()

    return show


def do_sync(out: Output, options: dict[str, Any]) -> None:
    show = options.get("progress")
    if show is None:
        show = not options["json"] and sys.stderr.isatty()
    report = manager.sync(
        actor=ACTOR,
        progress=_progress_printer(out) if show else None,
        allow_downgrade=options.get("allow_downgrade", False),
    )
    if options["json"]:
        out.emit(report.as_dict())
        return
    for label, names in (
        (gettext("added"), report.added),
        (gettext("updated"), report.updated),
        (gettext("activated"), report.activated),
        (gettext("failed"), report.failed),
        (gettext("missing"), report.missing),
    ):
        if names:
            out.stdout.write(f"{label:>9}: {', '.join(names)}")
    total = Plugin.objects.count()
    errors = Plugin.objects.filter(state="error").count()
    values = {"total": total, "errors": errors}
    if report.changed:
        text = ngettext(
            "%(total)d plugins known, %(errors)d in error",
            "%(total)d plugins known, %(errors)d in error",
            total,
        )
    else:
        text = ngettext(
            "%(total)d plugins known, %(errors)d in error; nothing changed",
            "%(total)d plugins known, %(errors)d in error; nothing changed",
            total,
        )
    out.stdout.write(text % values)


def do_list(out: Output, options: dict[str, Any]) -> None:
    qs = manager.get_available_plugins()
    if options["state"]:
        qs = qs.filter(state=options["state"])
    if options["plugin_type"]:
        qs = qs.filter(type=options["plugin_type"])
    rows = [{**p.summary(), "trust": p.trust or None} for p in qs]
    if options["json"]:
        out.emit(rows)
        return
    if not rows:
        out.stdout.write(gettext("no plugins known; run 'manage.py plugins sync'"))
        return
    columns = [gettext("NAME"), gettext("VERSION"), gettext("TYPE"), gettext("SOURCE")]
    columns += [gettext("STATE"), gettext("ERROR")]
    widths = (28, 9, 11, 12, 10, 0)
    out.stdout.write(" ".join(f"{c:<{w}}" for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        err = f"{r['error']['code']}: {r['error']['message']}" if r["error"] else ""
        state = r["state"] + ("" if r["enabled"] else "*")
        if r.get("restart_required"):
            state += " " + gettext("(restart required)")
        elif r.get("migrate_required"):
            state += " " + gettext("(migrate required)")
        out.stdout.write(
            f"{r['name']:<28} {r['version']:<9} {r['type']:<11} "
            f"{r['source']:<12} {state:<10} {err[:120]}"
        )


def do_show(out: Output, options: dict[str, Any]) -> None:
    plugin = manager.get(options["name"])
    events = [e.as_dict() for e in manager.events(plugin.name, limit=10)]
    needs, needed_by = manager.dependencies(plugin.name)
    data = {
        **plugin.summary(),
        "depends_on": [link.as_dict() for link in needs],
        "dependents": [link.as_dict() for link in needed_by],
        "declared_name": plugin.declared_name,
        "description": plugin.description,
        "warnings": plugin.warnings,
        "trust": plugin.trust or None,
        "error_details": plugin.error_details,
        "manifest": plugin.manifest,
        "state_changed_at": plugin.state_changed_at,
        "events": events,
    }
    if options["json"]:
        out.emit(data)
        return
    # For a person: the display name in the active language (the JSON keeps the manifest's).
    shown = {**data, **_texts(plugin)}
    for key, label in (
        ("name", gettext("name:")),
        ("display_name", gettext("display_name:")),
        ("version", gettext("version:")),
        ("type", gettext("type:")),
        ("source", gettext("source:")),
        ("location", gettext("location:")),
        ("state", gettext("state:")),
        ("enabled", gettext("enabled:")),
        ("missing", gettext("missing:")),
    ):
        out.stdout.write(f"{label:<14} {shown[key]}")
    trust = describe_trust(plugin.trust, source=plugin.source)
    label = gettext("trust:")
    out.stdout.write(f"{label:<14} {trust}")
    if plugin.error:
        label = gettext("error:")
        out.stdout.write(f"{label:<14} {plugin.error_code}: {plugin.error_message}")
        for d in plugin.error_details:
            out.stdout.write(f"{'':<14} {d.get('path', '')} {d.get('message', '')}")
    label = gettext("warning:")
    for w in plugin.warnings:
        out.stdout.write(f"{label:<14} {w}")
    for label, links in ((gettext("depends on:"), needs), (gettext("needed by:"), needed_by)):
        for link in links:
            state = link.state or gettext("not installed")
            specifier = link.specifier or gettext("(any)")
            out.stdout.write(f"{label:<14} {link.name} {specifier} [{state}]")
    out.stdout.write(gettext("recent events:"))
    for e in events:
        arrow = f"{e['from']} -> {e['to']} " if e["to"] else ""
        out.stdout.write(
            f"  {e['at']:%Y-%m-%d %H:%M:%S} {e['kind']:<10} {arrow}{e['reason']} ({e['actor']})"
        )


def _texts(plugin: Plugin) -> dict[str, str]:
    """The display name in the active language (LANGUAGE_CODE), from the manifest's
    ``plugin.translations`` when it has one."""
    return localized(
        translations_of(plugin.manifest), get_language(), display_name=plugin.display_name
    )


def _toggle(out: Output, options: dict[str, Any], verb: str) -> None:
    action: dict[str, Callable[..., Plugin]] = {
        "enable": manager.enable,
        "disable": manager.disable,
        "reload": manager.reload,
    }
    extra = {"force": bool(options.get("force"))} if verb == "disable" else {}
    plugin = action[verb](options["name"], actor=ACTOR, **extra)
    if options["json"]:
        out.emit(plugin.summary())
    else:
        why = f" ({plugin.error_code}: {plugin.error_message})" if plugin.error else ""
        if not why and plugin.enabled and plugin.state == "disabled" and plugin.warnings:
            # Wanted but off: the registry mode does not serve it (sync's note comes last).
            why = f" ({plugin.warnings[-1]})"
        out.stdout.write(f"{plugin.name}: {plugin.state}{why}")
    if verb in ("enable", "reload") and plugin.state != "active":
        raise Failed("")


def do_enable(out: Output, options: dict[str, Any]) -> None:
    _toggle(out, options, "enable")


def do_disable(out: Output, options: dict[str, Any]) -> None:
    try:
        _toggle(out, options, "disable")
    except HasDependents as exc:  # nothing changed: say who needs it, exit 1
        if options["json"]:
            out.emit({"error": str(exc), "code": exc.code, "dependents": exc.dependents})
            raise Failed("") from None
        raise Failed(error_line(str(exc))) from None


def do_reload(out: Output, options: dict[str, Any]) -> None:
    _toggle(out, options, "reload")


def do_validate(out: Output, options: dict[str, Any]) -> None:
    target = options["target"]
    results: list[ValidationResult]
    if target is None:
        results = [manager.validate_plugin(c.name) for c in manager.discover_plugins().plugins]
    elif Path(target).exists():
        results = [manager.validate_path(Path(target))]
    elif "/" in target or target.endswith(".json"):
        raise CommandError(
            gettext("no such file or folder: %(target)s") % {"target": target}, returncode=2
        )
    else:
        results = [manager.validate_plugin(target)]
    if options["json"]:
        out.emit([r.as_dict() for r in results] if target is None else results[0].as_dict())
    else:
        for r in results:
            label = f"{r.name} {r.version or ''}".strip() if r.name else r.target
            values = {"label": label, "target": r.target, "code": r.code}
            if r.valid:
                out.stdout.write(gettext("ok: %(label)s (%(target)s)") % values)
                continue
            out.stdout.write(gettext("invalid: %(label)s (%(target)s) [%(code)s]") % values)
            for e in r.errors:
                out.stdout.write(f"  {e['path']}: {e['message']}")
    if any(not r.valid for r in results):
        raise Failed("")


def do_health(out: Output, options: dict[str, Any]) -> None:
    outcomes = manager.check_health(options["name"], actor=ACTOR)
    rows = [
        {
            "name": o.plugin,
            "status": o.status.status.value,
            "message": o.status.message,
            "details": o.status.details,
            "duration_ms": round(o.duration_ms, 2),
        }
        for o in outcomes
    ]
    if options["json"]:
        out.emit(rows if options["name"] is None else rows[0])
    else:
        for r in rows:
            out.stdout.write(
                f"{r['name']:<28} {r['status']:<10} {r['duration_ms']:>8.1f} ms {r['message']}"
            )
    if any(r["status"] == "unhealthy" for r in rows):
        raise Failed("")


def do_events(out: Output, options: dict[str, Any]) -> None:
    rows = [e.as_dict() for e in manager.events(options["name"], limit=options["limit"])]
    if options["json"]:
        out.emit(rows)
        return
    for r in rows:
        arrow = f"{r['from']} -> {r['to']} " if r["to"] else ""
        out.stdout.write(
            f"{r['at']:%Y-%m-%d %H:%M:%S} {r['plugin']:<24} {r['kind']:<10} "
            f"{arrow}{r['reason']} ({r['actor']})"
        )
