"""stonks_plugins: discovers, validates, loads and manages Stonks Overwatch plugins.

Plugin authors import only from :mod:`stonks_plugins.sdk`; everything else is internal.
"""

CORE_API_VERSION = "1.0.0"
"""The plugin API version this core serves; manifests bound it with api.min/max_version."""
