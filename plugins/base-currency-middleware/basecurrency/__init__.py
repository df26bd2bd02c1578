"""Base-currency middleware plugin."""
