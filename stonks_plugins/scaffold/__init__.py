"""The plugin scaffold behind ``manage.py plugins new`` (templates ship as package data)."""

from .generator import (
    PLUGIN_TYPES,
    Names,
    ScaffoldError,
    ScaffoldResult,
    build_manifest,
    create_plugin,
    package_name,
    render_files,
)

__all__ = [
    "PLUGIN_TYPES",
    "Names",
    "ScaffoldError",
    "ScaffoldResult",
    "build_manifest",
    "create_plugin",
    "package_name",
    "render_files",
]
