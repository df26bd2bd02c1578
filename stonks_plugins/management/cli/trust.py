"""The trust subcommands: lock, keygen, sign (see docs/trust.md). The work is
:mod:`stonks_plugins.trust.authoring`'s; this module parses and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stonks_plugins.trust import authoring
from stonks_plugins.trust.integrity import SIGNATURE_FILENAME

from . import Adder, Handler, Output, fail


def register(add: Adder) -> dict[str, Handler]:
    p = add("lock", "record the SHA-256 of every file of a plugin in its manifest")
    p.add_argument("name", help="plugin NAME, or the path of its folder")
    p = add("keygen", "write a new Ed25519 private key to FILE and print its public key")
    p.add_argument("file", help="where to write the private key (never overwritten)")
    p = add("sign", "sign a locked plugin's manifest with a private key")
    p.add_argument("name", help="plugin NAME, or the path of its folder")
    p.add_argument("--key", required=True, metavar="FILE", help="the private key to sign with")
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
    if done.changed:
        out.stdout.write(f"locked {where.name}: {done.files} files recorded in {done.manifest}")
    else:
        out.stdout.write(f"{where.name}: the lock is current ({done.files} files); nothing changed")
    if done.signature_removed:
        out.stdout.write(
            f"removed {SIGNATURE_FILENAME}: it signed the former manifest; sign again "
            f"('manage.py plugins sign {options['name']} --key FILE')"
        )
    if done.changed:
        out.stdout.write("run 'manage.py plugins sync' to apply it")


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
    out.stderr.write(
        f"private key written to {path} (mode 0600): keep it secret and off the server. "
        "To trust what it signs, add the line above to PLUGINS_TRUSTED_KEYS."
    )


def do_sign(out: Output, options: dict[str, Any]) -> None:
    try:
        signed = authoring.sign(options["name"], Path(options["key"]))
    except authoring.TrustCommandError as exc:
        fail(out, options, str(exc))
    if options["json"]:
        out.emit({"name": signed.name, "signature": str(signed.signature), "key": signed.key})
        return
    out.stdout.write(f"signed {signed.name} with {signed.key}: {signed.signature}")
    out.stdout.write("run 'manage.py plugins sync' to apply it")
