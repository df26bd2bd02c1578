"""Allocation aggregator plugin."""
