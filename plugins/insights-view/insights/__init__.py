"""Insights view plugin."""
