"""The plugin_manifest.json standard: JSON Schema, validation and the typed model."""

from .model import PluginManifest
from .validation import (
    MANIFEST_FILENAME,
    ManifestError,
    ManifestIssue,
    load_manifest_file,
    manifest_schema,
    parse_manifest,
    validate_manifest,
)

__all__ = [
    "MANIFEST_FILENAME",
    "ManifestError",
    "ManifestIssue",
    "PluginManifest",
    "load_manifest_file",
    "manifest_schema",
    "parse_manifest",
    "validate_manifest",
]
