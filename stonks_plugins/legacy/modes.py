"""``PLUGINS_REGISTRY_MODE``: which registry serves brokers, and what the plugin rows say.

``legacy``
    the legacy registry only: legacy brokers are served as ``registry_setup`` registered
    them (unwrapped, whatever their row says) and no plugin is served.
``alongside`` (default)
    both. A legacy broker with a row is served wrapped when its row is active and kept out of
    the registry when it is disabled; one never synced is left exactly as registered. On a
    name clash the legacy broker keeps its name (see below).
``plugins``
    plugins only: legacy brokers are removed from the registry in every process, so a
    migrated plugin may take the legacy broker's name.

What the rows say (``plugins list``, the API, the admin)
-------------------------------------------------------
Switching the mode changes nothing a user sees but the ``source`` column of a broker that
both a legacy registration and a plugin provide; everything else a row shows is what this
deployment serves. ``plugins sync`` (which the container runs at every start) brings the rows
in line with the mode, as it does with the plugin folders; the bridge of every process
already serves by the mode.

* A row the mode does not serve — every plugin in ``legacy`` mode, every legacy broker in
  ``plugins`` mode — is ``disabled``, with ``enabled`` left as the operator set it and a
  warning (``plugins show``, the API's detail, the admin) naming ``PLUGINS_REGISTRY_MODE``.
  Not ``error``: nothing failed, and the system health must not turn degraded because an
  operator chose a mode. Not ``missing``: the code is there. Nothing is deleted, its config
  least of all, and switching back re-activates it (``enabled`` still says yes). Operators
  may enable and disable such a row; the wish is kept and takes effect in a mode that
  serves it.
* In ``legacy`` mode a legacy broker is served whatever its row says, so its row is
  ``active`` even when an operator disabled it (a warning says so); the ``disabled`` takes
  effect in ``alongside`` mode.
* A plugin and a legacy broker of the same name (``migrate-legacy ibkr --name ibkr``) are
  one broker and share one row — the name is the row's key, and its config history is the
  broker's whatever serves it. The row describes whichever of the two the mode serves: the
  legacy broker in ``legacy`` and ``alongside`` mode (source ``legacy``, with a warning
  naming the plugin waiting behind it), the plugin in ``plugins`` mode (source
  ``directory`` or ``entry_point``). Disabling that row switches the broker off, whoever
  serves it; handing the name to the plugin is what ``plugins`` mode is for. When legacy
  brokers get no rows (``PLUGINS_LEGACY_AS_PLUGINS`` off) such a plugin's own row is held
  ``disabled`` in ``alongside`` mode instead, saying which legacy broker keeps the name.
"""

from __future__ import annotations

import logging
import typing
from dataclasses import dataclass

from ..conf import plugin_settings
from ..discovery.candidate import Source

logger = logging.getLogger(__name__)

MODES = ("legacy", "alongside", "plugins")
DEFAULT_MODE = "alongside"

_PLUGINS_MODE_NOTE = (
    "not served: PLUGINS_REGISTRY_MODE=plugins serves plugins only. Set it to 'alongside' "
    "(or 'legacy') and run 'plugins sync' to serve this legacy broker again; its row and "
    "config are kept"
)
_LEGACY_MODE_NOTE = (
    "not served: PLUGINS_REGISTRY_MODE=legacy serves only the brokers registry_setup.py "
    "registers. Set it to 'alongside' (or 'plugins') and run 'plugins sync' to serve this "
    "plugin; its row and config are kept"
)


def registry_mode() -> str:
    """``PLUGINS_REGISTRY_MODE``; an unknown value falls back to the default, loudly."""
    mode = str(plugin_settings.REGISTRY_MODE or DEFAULT_MODE).lower()
    if mode not in MODES:
        logger.error(
            "PLUGINS_REGISTRY_MODE=%r is not one of %s; using %r", mode, MODES, DEFAULT_MODE
        )
        return DEFAULT_MODE
    return mode


def not_served_note(source: str, mode: str) -> str | None:
    """Why ``mode`` serves no row of ``source`` (a ``Source`` value); None when it may."""
    if mode == "plugins" and source == Source.LEGACY.value:
        return _PLUGINS_MODE_NOTE
    if mode == "legacy" and source != Source.LEGACY.value:
        return _LEGACY_MODE_NOTE
    return None


@dataclass(frozen=True)
class ModePlan:
    """What the registry mode means for the plugins discovery found (read by the sync)."""

    ceded: frozenset[str]
    """Plugins whose name — and row — belongs to the legacy broker of that name now: the
    sync of plugin folders leaves their row to :func:`sync_legacy`."""
    held: dict[str, str]
    """Plugins the mode does not serve, with the note their row shows; they are kept
    ``disabled``."""


def legacy_keeps_its_name(mode: str) -> bool:
    """Whether, in ``mode``, a legacy broker keeps its name (and row) from a plugin of the
    same name: in every mode that serves legacy brokers."""
    return mode != "plugins"


def mode_plan(
    names: typing.Iterable[str], legacy_names: typing.Callable[[], typing.Iterable[str]]
) -> ModePlan:
    """The plan for the plugins ``names`` under the current ``PLUGINS_REGISTRY_MODE``.
    ``legacy_names`` (the legacy adapter's ``legacy_serving.saved_now``, passed in: the
    adapter imports this module) is called only in modes where legacy brokers keep their
    names."""
    mode = registry_mode()
    if not legacy_keeps_its_name(mode):  # 'plugins': every plugin is served, by its name
        return ModePlan(frozenset(), {})
    legacy = set(legacy_names())
    rows_for_legacy = manages_legacy()
    ceded: set[str] = set()
    held: dict[str, str] = {}
    for name in names:
        if name in legacy and rows_for_legacy:
            ceded.add(name)
        elif name in legacy:
            held[name] = (
                f"not served: the legacy broker '{name}' registered by registry_setup.py "
                f"keeps this name while PLUGINS_REGISTRY_MODE={mode}. Set it to 'plugins' "
                "and run 'plugins sync' to serve this plugin instead"
            )
        elif mode == "legacy":
            held[name] = _LEGACY_MODE_NOTE
    return ModePlan(frozenset(ceded), held)


def manages_legacy() -> bool:
    """``PLUGINS_LEGACY_AS_PLUGINS`` (default on): whether sync gives legacy brokers rows.
    Off, the legacy brokers stay outside the plugin system (the test suite's default, so
    tests of plugins see only plugins)."""
    return bool(plugin_settings.LEGACY_AS_PLUGINS)
