"""Reason codes and the exceptions that carry them.

Codes are stable: they appear in the API, the CLI's ``--json`` output and the admin, and
scripts match on them. Every message names the plugin and says what to fix.
"""

from __future__ import annotations

from enum import StrEnum

from .redaction import mask_known


class ReasonCode(StrEnum):
    MANIFEST_UNREADABLE = "manifest_unreadable"
    MANIFEST_INVALID = "manifest_invalid"
    DUPLICATE = "duplicate"
    INCOMPATIBLE_API = "incompatible_api"
    INCOMPATIBLE_CORE = "incompatible_core"
    MISSING_DEPENDENCY = "missing_dependency"
    IMPORT_ERROR = "import_error"
    INITIALIZE_FAILED = "initialize_failed"
    HEALTH_FAILED = "health_failed"
    TIMEOUT = "timeout"
    CIRCUIT_OPEN = "circuit_open"
    CONFIG_INVALID = "config_invalid"
    INTEGRITY_FAILED = "integrity_failed"
    PERMISSION_DENIED = "permission_denied"


class PluginError(Exception):
    """A plugin problem with a stable reason code and a message a person can act on."""

    def __init__(self, plugin: str, code: ReasonCode, message: str) -> None:
        message = mask_known(message)  # plugin text may quote a credential
        super().__init__(f"plugin '{plugin}': {message}")
        self.plugin = plugin
        self.code = code
        self.message = message


class PluginNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no plugin named '{name}' (run 'manage.py plugins sync' to discover)")
        self.name = name


class IllegalTransition(RuntimeError):
    def __init__(self, plugin: str, current: str, target: str, allowed: list[str]) -> None:
        allowed_text = ", ".join(allowed) or "nothing"
        super().__init__(
            f"plugin '{plugin}': cannot go from '{current}' to '{target}' "
            f"(from '{current}' it may go to: {allowed_text})"
        )
        self.plugin = plugin
        self.current = current
        self.target = target
