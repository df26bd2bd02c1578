"""Reason codes and the exceptions that carry them.

Codes are stable: they appear in the API, the CLI's ``--json`` output and the admin, and
scripts match on them. Every message names the plugin and says what to fix.

One family: every exception the engine raises derives from :class:`StonksPluginsError`
(``except StonksPluginsError`` catches them all; ``tests/stonks_plugins/test_error_family.py``
walks the package to keep it so). Those that callers also catch by a builtin type keep it as
a second base (``PluginNotFound`` is a ``LookupError``, ``PluginFileError`` an ``OSError``...).

Plugins report why they cannot run by raising one of :class:`PluginNotReady`,
:class:`PluginAuthFailed` or :class:`PluginConfigRejected` (exported by the SDK) - Home
Assistant's ``ConfigEntryNotReady`` / ``ConfigEntryAuthFailed`` / ``ConfigEntryError``. The
code each carries decides what happens next: ``not_ready`` is retried in the background with
backoff; ``auth_failed`` and ``config_invalid`` wait in ``error`` for the operator
(:data:`OPERATOR_CODES`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

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
    NOT_READY = "not_ready"
    """The plugin said it cannot start yet (its broker is down...): retried with backoff."""
    AUTH_FAILED = "auth_failed"
    """The plugin said its credentials were refused: waits for the operator."""


OPERATOR_CODES: Final = frozenset({ReasonCode.AUTH_FAILED, ReasonCode.CONFIG_INVALID})
"""Failures only an operator can fix (credentials, config). Never retried in the background
nor turned into ``circuit_open``; a config change, an enable or a reload tries again."""


class StonksPluginsError(Exception):
    """Base of every exception the plugin system raises. ``code`` is a stable reason code
    (a :class:`ReasonCode`, or a surface's own string such as ``has_dependents``) when the
    error has one, else None."""

    code: ReasonCode | str | None = None


class PluginError(StonksPluginsError):
    """A plugin problem with a stable reason code and a message a person can act on."""

    code: ReasonCode

    def __init__(self, plugin: str, code: ReasonCode, message: str) -> None:
        message = mask_known(message)  # plugin text may quote a credential
        super().__init__(f"plugin '{plugin}': {message}")
        self.plugin = plugin
        self.code = code
        self.message = message


class PluginNotFound(StonksPluginsError, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no plugin named '{name}' (run 'manage.py plugins sync' to discover)")
        self.name = name


class IllegalTransition(StonksPluginsError, RuntimeError):
    def __init__(self, plugin: str, current: str, target: str, allowed: list[str]) -> None:
        allowed_text = ", ".join(allowed) or "nothing"
        super().__init__(
            f"plugin '{plugin}': cannot go from '{current}' to '{target}' "
            f"(from '{current}' it may go to: {allowed_text})"
        )
        self.plugin = plugin
        self.current = current
        self.target = target


# -- what a plugin raises -----------------------------------------------------------------------


class PluginStateError(StonksPluginsError):
    """Base of the exceptions a plugin raises to say why it cannot run - from ``initialize``,
    ``on_config_change``, a service method or ``health_check``, in process or in its own
    process. The boundary keeps the class's ``code`` (whatever the operation) and the
    plugin's ``message``; the plugin's name is added by the engine."""

    code: ReasonCode = ReasonCode.INITIALIZE_FAILED
    default_message = "the plugin cannot run"

    def __init__(self, message: str = "") -> None:
        message = mask_known(str(message)) or self.default_message
        super().__init__(message)
        self.message = message


class PluginNotReady(PluginStateError):
    """Not ready yet - the broker is unreachable, a token is being refreshed: the plugin is
    in ``error`` with ``not_ready`` and its load is retried in the background with backoff
    (``initialize``), or the call fails and the circuit counts it (a service method)."""

    code = ReasonCode.NOT_READY
    default_message = "not ready yet; retried in the background"


class PluginAuthFailed(PluginStateError):
    """The broker refused the credentials: the plugin is in ``error`` with ``auth_failed``
    until an operator changes its config, enables or reloads it - never retried in the
    background (retrying a refused password can lock the account)."""

    code = ReasonCode.AUTH_FAILED
    default_message = "authentication failed; fix the credentials in the plugin's config"


class PluginConfigRejected(PluginStateError):
    """The config is unusable, for a reason only the plugin knows (an account id the broker
    does not have...): ``config_invalid`` with the plugin's message. From
    ``on_config_change`` the new config is refused and the previous one stays live;
    elsewhere the plugin waits in ``error`` for the operator to fix its config."""

    code = ReasonCode.CONFIG_INVALID
    default_message = "the configuration was rejected by the plugin"


def carried_code(exc: BaseException) -> ReasonCode | None:
    """The reason code a plugin's exception carries (a :class:`PluginStateError`), or None:
    the boundary then picks the code by the operation."""
    return exc.code if isinstance(exc, PluginStateError) else None
