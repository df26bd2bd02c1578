"""DeGiro broker plugin for Stonks Overwatch, backed by DeGiro's CSV exports.

Nothing is imported here on purpose: the host imports service modules lazily, on first use.
"""

__version__ = "1.0.0"
