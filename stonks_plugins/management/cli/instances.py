"""``plugins instances add|remove|list``: a plugin configured more than once (``NAME:LABEL``).

Every other subcommand takes an instance's name where it takes a plugin's
(``plugins config set degiro-broker:partner ...``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext

from stonks_plugins.instance_names import InvalidLabel, instance_name
from stonks_plugins.instances import InstanceRefused
from stonks_plugins.manager import manager

from . import ACTOR, Adder, Failed, Handler, Output, fail


def register(add: Adder) -> dict[str, Handler]:
    p = add("instances", gettext("configure a plugin more than once (NAME:LABEL)"), json_flag=False)
    sub = p.add_subparsers(dest="instances_action", metavar="INSTANCES_ACTION", required=True)
    for verb, help_text in (
        ("add", gettext("add an instance NAME:LABEL with its own config, secrets and state")),
        ("remove", gettext("remove the instance NAME:LABEL with its config, secrets and history")),
    ):
        c = sub.add_parser(verb, help=help_text)
        c.add_argument("name", help=gettext("the plugin (its default instance's name)"))
        c.add_argument("label", help=gettext("the instance's label: a-z, 0-9, '-' and '_'"))
        c.add_argument("--json", action="store_true", help=gettext("machine-readable output"))
    c = sub.add_parser("list", help=gettext("a plugin's instances, its default instance first"))
    c.add_argument("name")
    c.add_argument("--json", action="store_true", help=gettext("machine-readable output"))
    return {"instances": do_instances}


def do_instances(out: Output, options: dict[str, Any]) -> None:
    action, name = options["instances_action"], options["name"]
    if action == "list":
        rows = [p.summary() for p in manager.list_instances(name)]
        if options["json"]:
            out.emit(rows)
            return
        for r in rows:
            err = f" ({r['error']['code']}: {r['error']['message']})" if r["error"] else ""
            state = r["state"] + ("" if r["enabled"] else "*")
            label = r["label"] or gettext("(default)")
            out.stdout.write(f"{r['name']:<36} {label:<16} {state}{err[:120]}")
        return
    try:
        if action == "add":
            plugin = manager.add_instance(name, options["label"], actor=ACTOR)
        else:
            plugin = manager.remove_instance(name, options["label"], actor=ACTOR)
    except InvalidLabel as exc:
        raise CommandError(str(exc), returncode=2) from None
    except InstanceRefused as exc:
        fail(out, options, str(exc))
    if action == "remove":
        removed = instance_name(plugin.name, options["label"])
        if options["json"]:
            out.emit({"removed": removed, "plugin": plugin.summary()})
        else:
            text = gettext("%(name)s: removed, with its config, secrets and history")
            out.stdout.write(text % {"name": removed})
        return
    if options["json"]:
        out.emit(plugin.summary())
    else:
        why = f" ({plugin.error_code}: {plugin.error_message})" if plugin.error else ""
        text = gettext("%(name)s: added, %(state)s") % {"name": plugin.name, "state": plugin.state}
        out.stdout.write(text + why)
    if plugin.error:
        raise Failed("")
