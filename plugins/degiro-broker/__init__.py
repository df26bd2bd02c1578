"""The degiro-broker plugin folder; the code is the ``degiro`` package next to this file."""
