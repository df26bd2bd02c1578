"""Brokers still wired in by hand (see ``registry_setup``)."""
