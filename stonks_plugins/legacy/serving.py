"""How this process serves the legacy brokers now: raw (as ``registry_setup`` registered
them), wrapped (as plugins, per their rows) or off. The runtime's serving set applies it at
each refresh; the rules behind each choice are in :mod:`.modes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.registry import BrokerRegistry

from ..lifecycle.states import PluginState
from ..registry import plugin_registry
from .broker_adapter import LegacyBrokerAdapter, LegacyRegistration, capture


@dataclass(frozen=True)
class LegacyRow:
    serving: bool
    revision: int
    config_version: int

    @classmethod
    def of(
        cls, enabled: bool, state: str, missing: bool, revision: int, config_version: int | None
    ) -> LegacyRow:
        """A legacy broker's row as read (the runtime reads them with the plugins' rows): it
        is served when enabled, active and still registered."""
        serving = bool(enabled) and state == PluginState.ACTIVE and not missing
        return cls(serving, revision, config_version or 0)


class LegacyServing:
    """The bridge's record of the legacy brokers: the saved copies and how each is served
    in this process now (``raw``, ``wrapped`` or ``off``)."""

    def __init__(self) -> None:
        self.saved: dict[str, LegacyRegistration] = {}
        self.applied: dict[str, str] = {}
        self.plugin_names: set[str] = set()
        """Brokers the runtime registered for plugins (never taken for legacy ones)."""

    def saved_now(self) -> dict[str, LegacyRegistration]:
        """The legacy brokers' registrations, with any made since the last look."""
        return self.capture(set(self.plugin_names))

    def capture(self, exclude: set[str]) -> dict[str, LegacyRegistration]:
        """Save copies of legacy registrations made since the last look (a re-registration
        replaces the copy and is re-applied)."""
        found = capture(BrokerRegistry(), exclude)
        for name, reg in found.items():
            self.saved[name] = reg
            self.applied.pop(name, None)
        return dict(self.saved)

    def wrapped(self) -> set[str]:
        return {n for n, how in self.applied.items() if how.startswith("wrapped")}

    def apply(self, rows: dict[str, LegacyRow], mode: str, exclude: set[str]) -> None:
        registry, factory = BrokerRegistry(), BrokerFactory()
        for name, reg in sorted(self.capture(exclude).items()):
            row = rows.get(name)
            if mode == "legacy" or (row is None and mode == "alongside"):
                how = "raw"
            elif mode == "plugins" or row is None or not row.serving:
                how = "off"
            else:
                how = f"wrapped|{row.revision}|{row.config_version}"
            if self.applied.get(name) == how:
                continue
            if self.applied.get(name) is not None or how != "raw":
                registry.unregister_broker(name)
                plugin_registry.unregister(name)
            if how == "raw":
                reg.register_raw(registry)
            elif how != "off":
                LegacyBrokerAdapter(reg).register_wrapped(registry)
            factory.clear_cache(name)
            self.applied[name] = how

    def restore(self) -> None:
        """Back to the legacy core's own registrations (tests, safe mode)."""
        registry = BrokerRegistry()
        for name, reg in self.saved.items():
            if self.applied.get(name, "raw") != "raw":
                registry.unregister_broker(name)
                plugin_registry.unregister(name)
                reg.register_raw(registry)
                BrokerFactory().clear_cache(name)
        self.applied.clear()


legacy_serving = LegacyServing()
"""This process's record of the legacy brokers (the runtime's serving set applies it)."""
