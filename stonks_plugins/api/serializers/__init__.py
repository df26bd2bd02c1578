"""The API's request and response shapes. Each serializer is also an OpenAPI component, and
its declared fields produce what is served - a field reads its part of the object (``source``,
a nested serializer, or a field of ``fields`` that says how) - so the schema is the output:
schemathesis checks every response against it.

Modules: ``base`` (the choice sets and the read-only base), ``fields``, ``errors`` (the one
error shape), ``plugins`` (the summary, the detail and their links), ``monitoring`` (health,
metrics, events, import reports), ``requests`` (what a request may send), ``system`` (a sync's
report, the system's health). Everything here only reads: the API changes plugins through
the manager alone.
"""

from .base import (
    CHECK_RESULTS,
    CIRCUIT_STATES,
    ERROR_LOCATIONS,
    HEALTH_STATUSES,
    PLUGIN_SOURCES,
    PLUGIN_STATES,
    REASON_CODES,
    SYSTEM_STATUSES,
    TRUST_STATUSES,
    ReadOnlySerializer,
)
from .errors import ErrorBodySerializer, ErrorDetailItemSerializer, ErrorSerializer
from .fields import RedactedCharField, RedactedJSONField, StrictBooleanField, StrictIntegerField
from .monitoring import (
    AbandonedCallSerializer,
    CallStatsSerializer,
    CircuitSerializer,
    HealthCheckResultSerializer,
    HealthCheckSerializer,
    ImportFileSerializer,
    ImportReportSerializer,
    ImportRowSerializer,
    ImportTotalsSerializer,
    PluginEventSerializer,
    PluginHealthSerializer,
    PluginMetricsSerializer,
)
from .plugins import (
    SUMMARY_FIELDS,
    DependencyLinkSerializer,
    PluginDetailSerializer,
    PluginErrorSerializer,
    PluginLinksSerializer,
    PluginSerializer,
    PluginTrustSerializer,
    with_translations,
)
from .requests import (
    DisableSerializer,
    HealthQuerySerializer,
    NewInstanceSchema,
    NewInstanceSerializer,
)
from .system import (
    SyncReportSerializer,
    SystemChecksSerializer,
    SystemHealthSerializer,
    SystemPluginsSerializer,
)

__all__ = [
    "CHECK_RESULTS",
    "CIRCUIT_STATES",
    "ERROR_LOCATIONS",
    "HEALTH_STATUSES",
    "PLUGIN_SOURCES",
    "PLUGIN_STATES",
    "REASON_CODES",
    "SUMMARY_FIELDS",
    "SYSTEM_STATUSES",
    "TRUST_STATUSES",
    "AbandonedCallSerializer",
    "CallStatsSerializer",
    "CircuitSerializer",
    "DependencyLinkSerializer",
    "DisableSerializer",
    "ErrorBodySerializer",
    "ErrorDetailItemSerializer",
    "ErrorSerializer",
    "HealthCheckResultSerializer",
    "HealthCheckSerializer",
    "HealthQuerySerializer",
    "ImportFileSerializer",
    "ImportReportSerializer",
    "ImportRowSerializer",
    "ImportTotalsSerializer",
    "NewInstanceSchema",
    "NewInstanceSerializer",
    "PluginDetailSerializer",
    "PluginErrorSerializer",
    "PluginEventSerializer",
    "PluginHealthSerializer",
    "PluginLinksSerializer",
    "PluginMetricsSerializer",
    "PluginSerializer",
    "PluginTrustSerializer",
    "ReadOnlySerializer",
    "RedactedCharField",
    "RedactedJSONField",
    "StrictBooleanField",
    "StrictIntegerField",
    "SyncReportSerializer",
    "SystemChecksSerializer",
    "SystemHealthSerializer",
    "SystemPluginsSerializer",
    "with_translations",
]
