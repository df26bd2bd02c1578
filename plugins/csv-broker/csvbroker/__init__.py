"""Generic CSV broker plugin for Stonks Overwatch: any CSV, read through a column mapping.

Nothing is imported here on purpose: the host imports service modules lazily, on first use.
"""

__version__ = "1.0.0"
