"""The module name a directory plugin's code is imported under: one per plugin name, never
shared.

A directory plugin is mounted as the package ``_stonks_plugin_pkgs.<slug>``. Two plugins
whose slugs were equal would share one package and run each other's files, so the slug is an
*injective* spelling of the name in the characters a module name may hold: lower-case letters
and digits stand for themselves, ``-`` (the usual separator) becomes ``_``, and everything
else is an escape that starts with ``_`` and an upper-case letter, which the spelling of
``-`` is never followed by:

=========  ========================================================
``_``      ``_U``
``.``      ``_D``
other      ``_X`` and two hex digits per UTF-8 byte (``@`` is ``_X40``)
=========  ========================================================

So ``acme-broker``, ``acme.broker`` and ``acme_broker`` mount as ``acme_broker``,
``acme_Dbroker`` and ``acme_Ubroker``, and the common names (``healthy-fixture``) read as they
always did. Upper-case letters are escaped too (``_X41`` for ``A``), which keeps the code
decodable. Lone surrogates (a folder name that is not UTF-8) are encoded with
``surrogatepass``, which is one-to-one as well.

Standard library only: settings import :mod:`stonks_plugins.django_apps`, which mounts
plugin packages under these names, and the process-isolation child uses them through the
loader.
"""

from __future__ import annotations

import re

PKG_ROOT = "_stonks_plugin_pkgs"
"""The synthetic parent package of every directory plugin's package."""

_PLAIN = re.compile(r"[a-z0-9-]*")
_ESCAPES = {"-": "_", "_": "_U", ".": "_D"}


def _escape(char: str) -> str:
    known = _ESCAPES.get(char)
    if known is not None:
        return known
    if char.isascii() and (char.isdigit() or char.islower()):
        return char
    return "".join(f"_X{b:02x}" for b in char.encode("utf-8", "surrogatepass"))


def plugin_slug(name: str) -> str:
    """The one identifier-like word that stands for the plugin ``name``: distinct names give
    distinct slugs."""
    if _PLAIN.fullmatch(name):  # the usual name: only '-' to spell otherwise
        return name.replace("-", "_")
    return "".join(_escape(c) for c in name)


def package_prefix(name: str) -> str:
    """``_stonks_plugin_pkgs.<slug>``: the package a directory plugin's code imports under."""
    return f"{PKG_ROOT}.{plugin_slug(name)}"
