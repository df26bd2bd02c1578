"""The legacy core: what plugins plug into. It imports nothing from ``stonks_plugins``."""
