"""Declared permissions: what a process-isolated plugin may read, write, connect to, launch
and see of the environment, and how its child process holds it to that.

The grammar is the manifest's (``manifest.model.PERMISSION_PATTERN``, checked when the
manifest is read; docs/trust.md, "Permissions"): ``network:HOST[:PORT]``, ``read:PATH``,
``write:PATH`` (implies read), ``subprocess:PROGRAM``, ``env:NAME`` (``NAME*``: a prefix).

Enforcement, in the child (:mod:`.child`), in three parts:

1. **the environment** - :func:`child_environment`: the host starts the child with only the
   variables Python needs and those declared, never the project's own secrets
   (:data:`NEVER_PASSED`), even when declared. The child drops anything else it finds, in
   case a launcher could not pass the environment (:func:`scrub_environment`);
2. **an audit hook** (PEP 578, :class:`Guard`) installed after the child's own imports and
   before any plugin code runs, which refuses what the :class:`Policy` does not allow: file
   opens, listings and changes, connections and name lookups, process launches, ``ctypes``;
3. **refusals fail the request**: a refusal raises ``PermissionError`` in the plugin's code
   and is recorded; the load or call it happened in then fails with ``permission_denied``
   whatever the plugin did with the exception (:meth:`Guard.take`).

A plugin that declares nothing reads its own folder, the Python installation (standard
library, site-packages) and the packages the child itself runs (``stonks_plugins``,
``stonks_overwatch/core``), a few harmless system files (:data:`SYSTEM_READABLE`), and
nothing else; it has no network and launches nothing.

The hook runs inside the plugin's own interpreter: it is a guard rail against plugins
reaching what they were not given - by mistake, through a library, or by ordinary means -
and a clean environment is the hard part (nothing secret is in the child at all). It is not
a jail; docs/trust.md lists what it cannot stop.
"""

from __future__ import annotations

from .environment import (
    BASE_ENV,
    BASE_ENV_PREFIXES,
    NEVER_PASSED,
    NEVER_PASSED_PREFIXES,
    child_environment,
    env_grants,
    scrub_environment,
)
from .grammar import KINDS, TMPDIR_TOKEN, HostRule, Permission, normal_host, parse
from .guard import Denied, Guard, Refusal, describe_refusals
from .policy import (
    SYSTEM_READABLE,
    SYSTEM_WRITABLE,
    Policy,
    distribution_metadata,
    find_program,
    own_packages,
    python_installation,
    resolve_declared_path,
)

__all__ = [
    "BASE_ENV",
    "BASE_ENV_PREFIXES",
    "KINDS",
    "NEVER_PASSED",
    "NEVER_PASSED_PREFIXES",
    "SYSTEM_READABLE",
    "SYSTEM_WRITABLE",
    "TMPDIR_TOKEN",
    "Denied",
    "Guard",
    "HostRule",
    "Permission",
    "Policy",
    "Refusal",
    "child_environment",
    "describe_refusals",
    "distribution_metadata",
    "env_grants",
    "find_program",
    "normal_host",
    "own_packages",
    "parse",
    "python_installation",
    "resolve_declared_path",
    "scrub_environment",
]
