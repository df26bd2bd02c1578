"""Bridges between the plugin system and the legacy broker registry."""
