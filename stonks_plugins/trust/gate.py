"""The check the loader runs before any of a plugin's code is imported.

Integrity is always checked (a locked plugin's files, an installed distribution's RECORD):
that needs no settings, so it runs in the serving process and in a process-isolated
plugin's child alike. The signature policy needs the settings; the Django side installs it
here at start-up (:func:`stonks_plugins.trust.install`), so in the serving process an
in-process plugin is also refused when the policy forbids it (sync refuses it before, and
this catches a plugin served from a row made under another policy or before a file changed).

Django-free: the sandbox child imports the loader, and so this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import PluginError, ReasonCode
from .integrity import check_candidate

if TYPE_CHECKING:
    from ..discovery.candidate import Candidate

_policy: Callable[[Candidate], None] | None = None


def install_policy(check: Callable[[Candidate], None] | None) -> None:
    """``check(candidate)`` raises :class:`PluginError` when the policy refuses a plugin."""
    global _policy
    _policy = check


def before_import(candidate: Candidate) -> None:
    """Raise ``integrity_failed`` (naming the files) unless the plugin may run."""
    report = check_candidate(candidate)
    if report is not None and not report.ok:
        raise PluginError(candidate.name, ReasonCode.INTEGRITY_FAILED, report.message)
    policy = _policy
    if policy is not None:
        policy(candidate)
