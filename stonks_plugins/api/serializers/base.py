"""What every response shape shares: the choice sets, each one named enum in the schema
(``SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]`` names them by these attributes), and the
base of the shapes that only answer (DRF's field machinery, compiled: ``compiled``)."""

from __future__ import annotations

from typing import Any

from ...discovery.candidate import Source
from ...errors import ReasonCode
from ...health import Health
from ...lifecycle.states import PluginState
from ...sandbox.circuit import CircuitState
from ...trust import TrustStatus
from .compiled import CompiledSerializer


def _values(enum: Any) -> list[str]:
    return [member.value for member in enum]


PLUGIN_STATES = _values(PluginState)
PLUGIN_SOURCES = _values(Source)
REASON_CODES = _values(ReasonCode)
TRUST_STATUSES = _values(TrustStatus)
HEALTH_STATUSES = _values(Health)
CIRCUIT_STATES = _values(CircuitState)
SYSTEM_STATUSES = ["ok", "degraded", "unavailable"]
CHECK_RESULTS = ["ok", "error"]
ERROR_LOCATIONS = ["body", "query"]


class ReadOnlySerializer(CompiledSerializer):
    # A response shape: never used to read input, so create/update are not supported. (No
    # docstring: the schema would show it as every subclass's description.)

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover
        raise NotImplementedError
