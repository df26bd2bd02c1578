"""Broker configuration base class."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self


@dataclass
class BaseConfig:
    """A broker's settings. Subclasses add fields; ``from_dict`` ignores unknown keys.

    Unknown keys are dropped rather than rejected because validation belongs to whoever
    produced the dict (the plugin system validates against a JSON Schema first).
    """

    enabled: bool = True
    offline_mode: bool = False
    update_frequency_minutes: int = 5

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Self:
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def default(cls) -> Self:
        return cls.from_dict({})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
