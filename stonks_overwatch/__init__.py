"""Stonks Overwatch host project.

The distribution is ``stonks-overwatch-core``; plugin manifests depend on it by that name.
"""

__version__ = "2.0.0"
