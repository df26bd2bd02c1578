"""What the guard refused, recorded where it happened: a refusal raises :class:`Denied` in
the plugin's code and is kept for the request's reply, whatever the plugin did with it."""

from __future__ import annotations

import errno
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from ...errors import StonksPluginsError
from .policy import Policy

_MAX_RECORDED = 50


@dataclass(frozen=True)
class Refusal:
    """One thing the plugin was not allowed to do."""

    action: str
    """What it tried, worded to follow "may not": "read", "connect to", "run"..."""
    target: str
    """The path, address or program."""
    grant: str | None
    """The permission that would allow it, or None when none can."""
    note: str = ""
    """Why none can, or what to do instead (when ``grant`` is None)."""
    stack: str = ""
    """Where the plugin's code was (file, line, function; no source read)."""

    def describe(self, plugin: str) -> str:
        text = f"plugin '{plugin}' may not {self.action} {self.target}"
        if self.grant is not None:
            return f'{text}: declare "{self.grant}" in its manifest\'s permissions'
        return f"{text}: {self.note}" if self.note else text


def describe_refusals(plugin: str, refusals: Sequence[Refusal]) -> str:
    """One message for a request's refusals: the first in full, then how many more."""
    first = refusals[0].describe(plugin)
    others = {r.describe(plugin) for r in refusals[1:]} - {first}
    if not others:
        return first
    shown = sorted(others)[:2]
    more = len(others) - len(shown)
    tail = "; ".join(shown) + (f"; and {more} more" if more else "")
    return f"{first} (also refused: {tail})"


class Denied(StonksPluginsError, PermissionError):
    """What the plugin's code gets for a refusal (an ``OSError``, as the operating system's
    own refusal would be)."""


class Refuser:
    """The guard's record of refusals: the checks (:mod:`.file_checks`,
    :mod:`.network_checks`, :mod:`.process_checks`) call :meth:`_refuse`; the child calls
    :meth:`take` after each request."""

    own_files: frozenset[str] = frozenset()
    """Source files of the guard's own classes, whose frames a refusal's stack leaves out
    (set by :class:`.guard.Guard`)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._refusals: list[Refusal] = []

    @property
    def refused(self) -> bool:
        """Something was refused since the last :meth:`take`."""
        return bool(self._refusals)

    def take(self) -> list[Refusal]:
        """The refusals recorded since the last call (and forget them)."""
        if not self._refusals:
            return []
        taken, self._refusals[:] = list(self._refusals), []
        return taken

    def _refuse(self, action: str, target: str, grant: str | None, note: str = "") -> NoReturn:
        try:
            # File, line and function only: reading source lines here would open files
            # from inside the hook.
            frames = traceback.StackSummary.extract(
                traceback.walk_stack(sys._getframe(2)), limit=25, lookup_lines=False
            )
            own = self.own_files
            stack = "".join(
                f'  File "{f.filename}", line {f.lineno}, in {f.name}\n'
                for f in reversed(frames)
                if f.filename not in own  # the guard's own frames say nothing
            )
        except Exception:  # the report must not fail where the refusal must not
            stack = ""
        refusal = Refusal(action, target, grant, note, stack)
        if len(self._refusals) < _MAX_RECORDED:
            self._refusals.append(refusal)
        raise Denied(errno.EACCES, refusal.describe(self.policy.plugin))
