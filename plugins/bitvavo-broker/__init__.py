"""The bitvavo-broker plugin folder; the code is the ``bitvavo`` package next to this file."""
