"""Health results a plugin reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class HealthStatus:
    status: Health = Health.HEALTHY
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

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
