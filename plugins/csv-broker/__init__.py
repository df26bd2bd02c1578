"""The csv-broker plugin folder; the code is the ``csvbroker`` package next to this file."""
