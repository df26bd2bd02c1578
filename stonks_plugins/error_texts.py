"""The engine errors a person meets most often at a surface (console, API, CLI), worded in the
active language (README "Languages").

Engine messages are English data: they are stored (reasons, events) and logged, and their
text is the same in every process. What is worded here is rebuilt from the exception's own
fields, so in English it is exactly ``str(exc)``; any other error is shown as it is.
"""

from __future__ import annotations

from django.utils.translation import gettext

from .errors import PluginNotFound


def error_text(exc: BaseException) -> str:
    """``exc``'s message for a person, in the active language where it is worded here."""
    if type(exc) is PluginNotFound:
        return gettext("no plugin named '%(name)s' (run 'manage.py plugins sync' to discover)") % {
            "name": exc.name
        }
    return str(exc)
