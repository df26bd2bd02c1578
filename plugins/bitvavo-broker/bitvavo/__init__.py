"""Bitvavo broker plugin for Stonks Overwatch, backed by Bitvavo's transaction history CSV.

Nothing is imported here on purpose: the host imports service modules lazily, on first use.
"""

__version__ = "1.0.0"
