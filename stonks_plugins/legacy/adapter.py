"""The seed's LegacyBrokerAdapter (6.1): every broker that ``registry_setup.py`` registered
the old way appears as a plugin with source ``legacy``, without a change to its code.

The rest of the engine reaches the legacy brokers through this module; the work is done in
three parts, so each can be read alone:

- :mod:`.broker_adapter`: the saved copy of what the core registered (read from the
  ``BrokerRegistry``'s snapshot) and that copy in plugin form (manifest, config, sandbox);
- :mod:`.serving`: how this process serves each copy now (raw, wrapped or off);
- :mod:`.rows`: the brokers' plugin rows, states and warnings (called by the manager).

Which of them ``PLUGINS_REGISTRY_MODE`` serves, and what that makes the rows say, is in
:mod:`.modes`.
"""

from __future__ import annotations

from .broker_adapter import (
    API_MAX_VERSION,
    LEGACY_LOCATION,
    LegacyBrokerAdapter,
    LegacyProvider,
    LegacyRegistration,
    capture,
    config_schema_of,
    dotted_ref,
    fingerprint,
    migrate_configuration,
)
from .rows import LegacySyncReport, reconcile, sync_legacy
from .serving import LegacyRow, LegacyServing, legacy_serving

__all__ = [
    "API_MAX_VERSION",
    "LEGACY_LOCATION",
    "LegacyBrokerAdapter",
    "LegacyProvider",
    "LegacyRegistration",
    "LegacyRow",
    "LegacyServing",
    "LegacySyncReport",
    "capture",
    "config_schema_of",
    "dotted_ref",
    "fingerprint",
    "legacy_serving",
    "migrate_configuration",
    "reconcile",
    "sync_legacy",
]
