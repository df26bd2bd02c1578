"""Interactive Brokers, the legacy way: hard-coded imports in ``registry_setup``."""
