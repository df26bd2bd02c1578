"""What installing, uninstalling and purging report: the one error type with a stable code, and
one result per operation (the CLI's ``--json``, the API's body and the console's messages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import StonksPluginsError

DISABLED = "install_disabled"
"""``PLUGINS_INSTALL_ENABLED`` is off."""
BAD_TARGET = "bad_target"
"""Not a wheel, a source folder or a requirement; a bad upload."""
BUSY = "busy"
"""Another install or uninstall is running in this environment."""
PIP_FAILED = "pip_failed"
PIP_TIMEOUT = "pip_timeout"
NOT_A_PLUGIN = "not_a_plugin"
"""The distribution announces no plugin entry point (it was uninstalled again)."""
INTEGRITY_FAILED = "integrity_failed"
"""The installed plugin failed verification or the signature policy (uninstalled again)."""
NOT_UNINSTALLABLE = "not_uninstallable"
"""A directory or legacy plugin, or one whose distribution is not installed."""
PURGE_REFUSED = "purge_refused"
"""The plugin is present and has run: uninstall it first."""


class InstallError(StonksPluginsError):
    """An install, uninstall or purge that was refused or failed. ``code`` is one of the
    constants above; ``output`` is what pip printed (scrubbed of secrets) when pip failed."""

    def __init__(self, code: str, message: str, output: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.output = output

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, "output": self.output}


@dataclass(frozen=True)
class Installed:
    """One distribution pip installed (``previous``: the version it replaced, if any)."""

    name: str
    version: str
    requested: bool
    previous: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "requested": self.requested,
            "previous": self.previous,
        }


@dataclass
class InstallResult:
    target: str
    distributions: list[Installed] = field(default_factory=list)
    """What pip installed; empty when the requirement was already satisfied."""
    plugins: list[dict[str, Any]] = field(default_factory=list)
    """The summaries (``Plugin.summary``) of the plugins the distribution provides, after
    the sync."""
    output: str = ""

    @property
    def ok(self) -> bool:
        """Every plugin it provides is active (or switched off by an operator)."""
        return all(p["error"] is None for p in self.plugins)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "ok": self.ok,
            "distributions": [d.as_dict() for d in self.distributions],
            "plugins": self.plugins,
            "output": self.output,
        }


@dataclass
class UninstallResult:
    name: str
    distribution: str
    """``NAME==VERSION`` of what was removed."""
    plugins: list[dict[str, Any]] = field(default_factory=list)
    """Every plugin that distribution provided (marked missing now, config kept)."""
    output: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "plugins": self.plugins,
            "output": self.output,
        }


@dataclass
class PurgeResult:
    name: str
    config_kept: bool
    deleted: dict[str, int] = field(default_factory=dict)
    """Rows deleted, by model (``stonks_plugins.PluginEvent``: 12, ...)."""
    present: bool = False
    """The plugin is still found on disk: the next sync records it again."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config_kept": self.config_kept,
            "deleted": self.deleted,
            "present": self.present,
        }
