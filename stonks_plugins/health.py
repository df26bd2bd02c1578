"""Health results a plugin reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .redaction import mask_known


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class HealthStatus:
    status: Health = Health.HEALTHY
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Made by plugin code, which may put its password in the message: masked at once with
        # the secrets this process gave it, before anything shows, stores or logs the result.
        object.__setattr__(self, "message", mask_known(self.message))
        object.__setattr__(self, "details", mask_known(self.details))

    @classmethod
    def healthy(cls, message: str = "", **details: Any) -> HealthStatus:
        return cls(Health.HEALTHY, message, details)

    @classmethod
    def degraded(cls, message: str, **details: Any) -> HealthStatus:
        return cls(Health.DEGRADED, message, details)

    @classmethod
    def unhealthy(cls, message: str, **details: Any) -> HealthStatus:
        return cls(Health.UNHEALTHY, message, details)

    @property
    def ok(self) -> bool:
        return self.status is not Health.UNHEALTHY
