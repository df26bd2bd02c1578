"""Typed, immutable view of a validated manifest.

Built only from data that passed the JSON Schema, so construction trusts shapes and types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stonks_overwatch.core.service_types import ServiceType


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    type: str
    display_name: str = ""
    description: str = ""
    author: str = ""
    license: str = ""
    homepage: str = ""


@dataclass(frozen=True)
class ApiSpec:
    min_version: str
    max_version: str | None = None
    interfaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Capabilities:
    services: tuple[ServiceType, ...] = ()
    features: tuple[str, ...] = ()
    supported_markets: tuple[str, ...] = ()
    supported_currencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigurationSpec:
    config_class: str | None = None
    required_credentials: tuple[str, ...] = ()
    optional_settings: tuple[str, ...] = ()
    schema: dict[str, Any] | str | None = None


@dataclass(frozen=True)
class EntryPoints:
    main: str | None = None
    config: str | None = None


@dataclass(frozen=True)
class PluginManifest:
    plugin: PluginInfo
    api: ApiSpec
    dependencies: dict[str, str] = field(default_factory=dict)
    plugin_dependencies: dict[str, str] = field(default_factory=dict)
    capabilities: Capabilities = field(default_factory=Capabilities)
    configuration: ConfigurationSpec = field(default_factory=ConfigurationSpec)
    services: dict[ServiceType, str] = field(default_factory=dict)
    entry_points: EntryPoints = field(default_factory=EntryPoints)
    isolation: str = "in_process"
    permissions: tuple[str, ...] = ()
    integrity: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.plugin.name

    @property
    def version(self) -> str:
        return self.plugin.version

    @property
    def type(self) -> str:
        return self.plugin.type

    @property
    def display_name(self) -> str:
        return self.plugin.display_name or self.plugin.name

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PluginManifest:
        deps = dict(data.get("dependencies", {}))
        plugin_deps = deps.pop("plugins", {}) or {}
        caps = data.get("capabilities", {})
        conf = data.get("configuration", {})
        eps = data.get("entry_points", {})
        api = data["api"]
        return cls(
            plugin=PluginInfo(**{k: v for k, v in data["plugin"].items() if k[:2] != "x-"}),
            api=ApiSpec(
                min_version=api["min_version"],
                max_version=api.get("max_version"),
                interfaces=tuple(api.get("interfaces", ())),
            ),
            dependencies=deps,
            plugin_dependencies=dict(plugin_deps),
            capabilities=Capabilities(
                services=tuple(ServiceType(s) for s in caps.get("services", ())),
                features=tuple(caps.get("features", ())),
                supported_markets=tuple(caps.get("supported_markets", ())),
                supported_currencies=tuple(caps.get("supported_currencies", ())),
            ),
            configuration=ConfigurationSpec(
                config_class=conf.get("config_class"),
                required_credentials=tuple(conf.get("required_credentials", ())),
                optional_settings=tuple(conf.get("optional_settings", ())),
                schema=conf.get("schema"),
            ),
            services={ServiceType(k): v for k, v in data.get("services", {}).items()},
            entry_points=EntryPoints(main=eps.get("main"), config=eps.get("config")),
            isolation=data.get("isolation", "in_process"),
            permissions=tuple(data.get("permissions", ())),
            integrity=dict(data.get("integrity", {})),
            raw=data,
        )
