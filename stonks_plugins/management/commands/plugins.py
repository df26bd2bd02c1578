"""``manage.py plugins ...``: a thin shell over :class:`stonks_plugins.manager.PluginManager`.

Exit status: 0 success; 1 the command ran and the thing failed (invalid manifest, unknown or
failing plugin); 2 bad usage.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stonks_plugins.errors import IllegalTransition, PluginNotFound
from stonks_plugins.manager import ValidationResult, manager
from stonks_plugins.models import Plugin

ACTOR = "cli"


class Failed(Exception):
    """The command ran and the thing failed: exit 1."""


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class Command(BaseCommand):
    help = "Discover, inspect, validate, enable and disable plugins."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

        def add(name: str, help_text: str, json_flag: bool = True) -> ArgumentParser:
            p: ArgumentParser = sub.add_parser(name, help=help_text)
            if json_flag:
                p.add_argument("--json", action="store_true", help="machine-readable output")
            return p

        add("sync", "discover plugins and record them in the database")
        p = add("list", "list known plugins")
        p.add_argument("--state", help="only plugins in this state")
        p.add_argument("--type", dest="plugin_type", help="only plugins of this type")
        p = add("show", "show one plugin in detail")
        p.add_argument("name")
        for verb in ("enable", "disable", "reload"):
            p = add(verb, f"{verb} a plugin")
            p.add_argument("name")
        p = add("validate", "validate a plugin folder, manifest file or known plugin name")
        p.add_argument("target", nargs="?", help="PATH or NAME; all discovered when omitted")
        p = add("health", "run health checks now (exit 1 when any plugin is unhealthy)")
        p.add_argument("name", nargs="?", help="one plugin; every enabled plugin when omitted")
        p = add("events", "recent events")
        p.add_argument("name", nargs="?")
        p.add_argument("--limit", type=int, default=50)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        handler = getattr(self, f"do_{action}")
        try:
            handler(options)
        except PluginNotFound as exc:
            self._fail(options, str(exc))
        except IllegalTransition as exc:
            self._fail(options, str(exc))
        except Failed as exc:
            if str(exc):
                self.stderr.write(str(exc))
            sys.exit(1)

    # -- helpers ---------------------------------------------------------------------------
    def _fail(self, options: dict[str, Any], message: str) -> None:
        if options.get("json"):
            self._emit({"error": message})
        else:
            self.stderr.write(f"error: {message}")
        sys.exit(1)

    def _emit(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, indent=2, default=_json_default))

    # -- actions -----------------------------------------------------------------------------
    def do_sync(self, options: dict[str, Any]) -> None:
        report = manager.sync(actor=ACTOR)
        if options["json"]:
            self._emit(report.as_dict())
            return
        for label, names in (
            ("added", report.added),
            ("updated", report.updated),
            ("activated", report.activated),
            ("failed", report.failed),
            ("missing", report.missing),
        ):
            if names:
                self.stdout.write(f"{label:>9}: {', '.join(names)}")
        total = Plugin.objects.count()
        errors = Plugin.objects.filter(state="error").count()
        self.stdout.write(
            f"{total} plugins known, {errors} in error"
            + ("" if report.changed else "; nothing changed")
        )

    def do_list(self, options: dict[str, Any]) -> None:
        qs = manager.get_available_plugins()
        if options["state"]:
            qs = qs.filter(state=options["state"])
        if options["plugin_type"]:
            qs = qs.filter(type=options["plugin_type"])
        rows = [p.summary() for p in qs]
        if options["json"]:
            self._emit(rows)
            return
        if not rows:
            self.stdout.write("no plugins known; run 'manage.py plugins sync'")
            return
        header = f"{'NAME':<28} {'VERSION':<9} {'TYPE':<11} {'SOURCE':<12} {'STATE':<10} ERROR"
        self.stdout.write(header)
        for r in rows:
            err = f"{r['error']['code']}: {r['error']['message']}" if r["error"] else ""
            state = r["state"] + ("" if r["enabled"] else "*")
            self.stdout.write(
                f"{r['name']:<28} {r['version']:<9} {r['type']:<11} "
                f"{r['source']:<12} {state:<10} {err[:120]}"
            )

    def do_show(self, options: dict[str, Any]) -> None:
        plugin = manager.get(options["name"])
        events = [
            {
                "at": e.created_at,
                "kind": e.kind,
                "from": e.from_state,
                "to": e.to_state,
                "reason": e.reason,
                "actor": e.actor,
            }
            for e in manager.events(plugin.name, limit=10)
        ]
        data = {
            **plugin.summary(),
            "declared_name": plugin.declared_name,
            "description": plugin.description,
            "warnings": plugin.warnings,
            "error_details": plugin.error_details,
            "manifest": plugin.manifest,
            "state_changed_at": plugin.state_changed_at,
            "events": events,
        }
        if options["json"]:
            self._emit(data)
            return
        for key in (
            "name",
            "display_name",
            "version",
            "type",
            "source",
            "location",
            "state",
            "enabled",
            "missing",
        ):
            self.stdout.write(f"{key + ':':<14} {data[key]}")
        if plugin.error:
            self.stdout.write(f"{'error:':<14} {plugin.error_code}: {plugin.error_message}")
            for d in plugin.error_details:
                self.stdout.write(f"{'':<14} {d.get('path', '')} {d.get('message', '')}")
        for w in plugin.warnings:
            self.stdout.write(f"{'warning:':<14} {w}")
        self.stdout.write("recent events:")
        for e in events:
            arrow = f"{e['from']} -> {e['to']} " if e["to"] else ""
            self.stdout.write(
                f"  {e['at']:%Y-%m-%d %H:%M:%S} {e['kind']:<10} {arrow}{e['reason']} ({e['actor']})"
            )

    def _toggle(self, options: dict[str, Any], verb: str) -> None:
        action = {"enable": manager.enable, "disable": manager.disable, "reload": manager.reload}
        plugin = action[verb](options["name"], actor=ACTOR)
        if options["json"]:
            self._emit(plugin.summary())
        else:
            self.stdout.write(
                f"{plugin.name}: {plugin.state}"
                + (f" ({plugin.error_code}: {plugin.error_message})" if plugin.error else "")
            )
        if verb in ("enable", "reload") and plugin.state != "active":
            raise Failed("")

    def do_enable(self, options: dict[str, Any]) -> None:
        self._toggle(options, "enable")

    def do_disable(self, options: dict[str, Any]) -> None:
        self._toggle(options, "disable")

    def do_reload(self, options: dict[str, Any]) -> None:
        self._toggle(options, "reload")

    def do_validate(self, options: dict[str, Any]) -> None:
        target = options["target"]
        results: list[ValidationResult]
        if target is None:
            results = [manager.validate_plugin(c.name) for c in manager.discover_plugins().plugins]
        elif Path(target).exists():
            results = [manager.validate_path(Path(target))]
        elif "/" in target or target.endswith(".json"):
            raise CommandError(f"no such file or folder: {target}", returncode=2)
        else:
            results = [manager.validate_plugin(target)]
        if options["json"]:
            self._emit([r.as_dict() for r in results] if target is None else results[0].as_dict())
        else:
            for r in results:
                label = f"{r.name} {r.version or ''}".strip() if r.name else r.target
                if r.valid:
                    self.stdout.write(f"ok: {label} ({r.target})")
                    continue
                self.stdout.write(f"invalid: {label} ({r.target}) [{r.code}]")
                for e in r.errors:
                    self.stdout.write(f"  {e['path']}: {e['message']}")
        if any(not r.valid for r in results):
            raise Failed("")

    def do_health(self, options: dict[str, Any]) -> None:
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
            self._emit(rows if options["name"] is None else rows[0])
        else:
            for r in rows:
                self.stdout.write(
                    f"{r['name']:<28} {r['status']:<10} {r['duration_ms']:>8.1f} ms {r['message']}"
                )
        if any(r["status"] == "unhealthy" for r in rows):
            raise Failed("")

    def do_events(self, options: dict[str, Any]) -> None:
        events = manager.events(options["name"], limit=options["limit"])
        rows = [
            {
                "plugin": e.plugin.name,
                "at": e.created_at,
                "kind": e.kind,
                "from": e.from_state,
                "to": e.to_state,
                "reason": e.reason,
                "actor": e.actor,
            }
            for e in events
        ]
        if options["json"]:
            self._emit(rows)
            return
        for r in rows:
            arrow = f"{r['from']} -> {r['to']} " if r["to"] else ""
            self.stdout.write(
                f"{r['at']:%Y-%m-%d %H:%M:%S} {r['plugin']:<24} {r['kind']:<10} "
                f"{arrow}{r['reason']} ({r['actor']})"
            )
