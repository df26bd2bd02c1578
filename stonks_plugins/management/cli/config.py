"""``plugins config get|set|schema|history|rollback|rotate-key``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext

from stonks_plugins.config.validation import ConfigInvalid
from stonks_plugins.config.versions import StaleConfig
from stonks_plugins.manager import manager

from . import ACTOR, Adder, Failed, Handler, Output, error_line


def register(add: Adder) -> dict[str, Handler]:
    p = add("config", gettext("read and change a plugin's configuration"), json_flag=False)
    sub = p.add_subparsers(dest="config_action", metavar="CONFIG_ACTION", required=True)

    def cmd(name: str, help_text: str) -> Any:
        c = sub.add_parser(name, help=help_text)
        c.add_argument("--json", action="store_true", help=gettext("machine-readable output"))
        return c

    c = cmd("get", gettext("the latest config (secrets masked)"))
    c.add_argument("name")
    c = cmd("set", gettext("save a new config version: --file F (JSON) and/or key=value pairs"))
    c.add_argument("name")
    c.add_argument(
        "pairs",
        nargs="*",
        metavar="KEY=VALUE",
        help=gettext(
            "dotted keys (settings.session_timeout=600); values parsed as JSON when possible"
        ),
    )
    c.add_argument("--file", type=Path, help=gettext("a JSON file with the whole config"))
    c.add_argument(
        "--base-version",
        type=int,
        help=gettext("refuse the write unless this is still the latest version"),
    )
    c = cmd("schema", gettext("the config JSON Schema"))
    c.add_argument("name")
    c = cmd("history", gettext("every saved version (secrets masked)"))
    c.add_argument("name")
    c = cmd("rollback", gettext("save an earlier version again as the newest one"))
    c.add_argument("name")
    c.add_argument("version", type=int)
    c.add_argument("--base-version", type=int)
    cmd("rotate-key", gettext("re-encrypt stored secrets with the primary PLUGINS_SECRET_KEY"))
    return {"config": do_config}


def _pairs(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CommandError(
                gettext("expected KEY=VALUE, got %(pair)r") % {"pair": pair}, returncode=2
            )
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                text = gettext("%(key)s: %(part)s is set to a value and a section")
                raise CommandError(text % {"key": key, "part": part}, returncode=2)
        node[parts[-1]] = value
    return out


def _print_issues(out: Output, options: dict[str, Any], exc: ConfigInvalid) -> None:
    issues = [i.as_dict() for i in exc.issues]
    if options["json"]:
        out.emit({"error": {"code": "config_invalid", "message": str(exc), "details": issues}})
    else:
        text = gettext("invalid config for %(name)s; nothing was changed:")
        out.stderr.write(text % {"name": exc.plugin})
        for i in issues:
            out.stderr.write(f"  {i['path']}: {i['message']} [{i['rule']}]")


def do_config(out: Output, options: dict[str, Any]) -> None:
    action = options["config_action"]
    if action == "rotate-key":
        count = manager.rotate_secrets()
        if options["json"]:
            out.emit({"rotated": count})
        else:
            text = gettext("re-encrypted secrets in %(count)d config version(s)")
            out.stdout.write(text % {"count": count})
        return
    name = options["name"]
    if action == "get":
        view = manager.get_config(name)
        if options["json"]:
            out.emit(view.as_dict())
        else:
            text = gettext("# %(name)s config version %(version)s (%(status)s)")
            out.stdout.write(text % {"name": name, "version": view.version, "status": view.status})
            out.stdout.write(json.dumps(view.data, indent=2))
    elif action == "schema":
        out.emit(manager.config_schema(name))
    elif action == "history":
        rows = [v.as_dict() for v in manager.config_history(name)]
        if options["json"]:
            out.emit(rows)
        else:
            for r in rows:
                changed = ", ".join(r["changed"]) or "-"
                out.stdout.write(
                    f"v{r['version']:<4} {r['status']:<10} {r['created_at']} "
                    f"{r['created_by'] or '-':<12} {r['message'] or changed}"
                )
    elif action in ("set", "rollback"):
        try:
            if action == "set":
                view = _set(options)
            else:
                view = manager.rollback_config(
                    name, options["version"], actor=ACTOR, base_version=options["base_version"]
                )
        except ConfigInvalid as exc:
            _print_issues(out, options, exc)
            raise Failed("") from None
        except (StaleConfig, LookupError) as exc:
            if options["json"]:
                out.emit({"error": {"code": "conflict", "message": str(exc)}})
            raise Failed("" if options["json"] else error_line(str(exc))) from None
        view = manager.get_config(name) if view.version else view
        if options["json"]:
            out.emit(view.as_dict())
        else:
            text = gettext("%(name)s: saved config version %(version)s (%(status)s)")
            line = text % {"name": name, "version": view.version, "status": view.status}
            out.stdout.write(line + (f": {view.message}" if view.message else ""))
        if view.status == "failed":
            raise Failed("")


def _set(options: dict[str, Any]) -> Any:
    name = options["name"]
    data: dict[str, Any] = {}
    partial = True
    if options["file"] is not None:
        try:
            data = json.loads(options["file"].read_text("utf-8"))
        except OSError as exc:
            text = gettext("cannot read %(file)s: %(error)s")
            raise CommandError(
                text % {"file": options["file"], "error": exc.strerror}, returncode=2
            ) from None
        except ValueError as exc:
            text = gettext("%(file)s is not valid JSON: %(error)s")
            raise CommandError(
                text % {"file": options["file"], "error": exc}, returncode=2
            ) from None
        partial = False
    if options["pairs"]:
        from stonks_plugins.config.versions import deep_merge

        data = deep_merge(data, _pairs(options["pairs"]))
    elif options["file"] is None:
        raise CommandError(gettext("give --file F or KEY=VALUE pairs"), returncode=2)
    return manager.set_config(
        name, data, actor=ACTOR, base_version=options["base_version"], partial=partial
    )
