"""The trust subcommands: lock, keygen, sign (see docs/trust.md). The work is
:mod:`stonks_plugins.trust.authoring`'s; this module parses and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.utils.translation import gettext

from stonks_plugins.trust import authoring
from stonks_plugins.trust.integrity import SIGNATURE_FILENAME

from . import Adder, Handler, Output, fail


def register(add: Adder) -> dict[str, Handler]:
    p = add("lock", gettext("record the SHA-256 of every file of a plugin in its manifest"))
    p.add_argument("name", help=gettext("plugin NAME, or the path of its folder"))
    p = add("keygen", gettext("write a new Ed25519 private key to FILE and print its public key"))
    p.add_argument("file", help=gettext("where to write the private key (never overwritten)"))
    p = add("sign", gettext("sign a locked plugin's manifest with a private key"))
    p.add_argument("name", help=gettext("plugin NAME, or the path of its folder"))
    p.add_argument(
        "--key", required=True, metavar="FILE", help=gettext("the private key to sign with")
    )
    return {"lock": do_lock, "keygen": do_keygen, "sign": do_sign}


def do_lock(out: Output, options: dict[str, Any]) -> None:
    try:
        where, done = authoring.lock(options["name"])
    except authoring.TrustCommandError as exc:
        fail(out, options, str(exc))
    if options["json"]:
        out.emit(
            {
                "name": where.name,
                "manifest": str(done.manifest),
                "files": done.files,
                "changed": done.changed,
                "signature_removed": done.signature_removed,
            }
        )
        return
    values = {"name": where.name, "files": done.files, "manifest": done.manifest}
    if done.changed:
        text = gettext("locked %(name)s: %(files)d files recorded in %(manifest)s")
    else:
        text = gettext("%(name)s: the lock is current (%(files)d files); nothing changed")
    out.stdout.write(text % values)
    if done.signature_removed:
        text = gettext(
            "removed %(file)s: it signed the former manifest; sign again "
            "('manage.py plugins sign %(name)s --key FILE')"
        )
        out.stdout.write(text % {"file": SIGNATURE_FILENAME, "name": options["name"]})
    if done.changed:
        out.stdout.write(gettext("run 'manage.py plugins sync' to apply it"))


def do_keygen(out: Output, options: dict[str, Any]) -> None:
    path = Path(options["file"])
    try:
        public = authoring.keygen(path)
    except authoring.TrustCommandError as exc:
        fail(out, options, str(exc))
    if options["json"]:
        out.emit({"public_key": public, "private_key_file": str(path)})
        return
    out.stdout.write(public)
    text = gettext(
        "private key written to %(path)s (mode 0600): keep it secret and off the server. "
        "To trust what it signs, add the line above to PLUGINS_TRUSTED_KEYS."
    )
    out.stderr.write(text % {"path": path})


def do_sign(out: Output, options: dict[str, Any]) -> None:
    try:
        signed = authoring.sign(options["name"], Path(options["key"]))
    except authoring.TrustCommandError as exc:
        fail(out, options, str(exc))
    if options["json"]:
        out.emit({"name": signed.name, "signature": str(signed.signature), "key": signed.key})
        return
    text = gettext("signed %(name)s with %(key)s: %(signature)s")
    out.stdout.write(text % {"name": signed.name, "key": signed.key, "signature": signed.signature})
    out.stdout.write(gettext("run 'manage.py plugins sync' to apply it"))
