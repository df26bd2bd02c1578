"""The seven states of the seed and the one table that says which moves are legal."""

from __future__ import annotations

from enum import StrEnum

from ..errors import IllegalTransition


class PluginState(StrEnum):
    DISCOVERED = "discovered"  # found, manifest read; not (yet) loaded
    LOADING = "loading"  # being validated and loaded
    LOADED = "loaded"  # validated, compatible, code reachable; not serving yet
    ACTIVE = "active"  # serving: its services are registered with the core
    ERROR = "error"  # failed; error_code and error_message say why
    DISABLED = "disabled"  # switched off by an operator
    UNLOADING = "unloading"  # being taken out of service


TRANSITIONS: dict[PluginState, frozenset[PluginState]] = {
    PluginState.DISCOVERED: frozenset(
        {PluginState.LOADING, PluginState.DISABLED, PluginState.ERROR}
    ),
    PluginState.LOADING: frozenset({PluginState.LOADED, PluginState.ERROR, PluginState.DISABLED}),
    PluginState.LOADED: frozenset({PluginState.ACTIVE, PluginState.UNLOADING, PluginState.ERROR}),
    PluginState.ACTIVE: frozenset({PluginState.UNLOADING, PluginState.ERROR}),
    # An errored plugin is retried (back to discovered) or switched off.
    PluginState.ERROR: frozenset(
        {PluginState.DISCOVERED, PluginState.DISABLED, PluginState.UNLOADING}
    ),
    PluginState.DISABLED: frozenset({PluginState.DISCOVERED}),
    PluginState.UNLOADING: frozenset(
        {PluginState.DISCOVERED, PluginState.DISABLED, PluginState.ERROR}
    ),
}


def check_transition(plugin: str, current: PluginState | str, target: PluginState | str) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> target`` is in the table."""
    cur, tgt = PluginState(current), PluginState(target)
    if tgt not in TRANSITIONS[cur]:
        raise IllegalTransition(plugin, cur, tgt, sorted(TRANSITIONS[cur]))
