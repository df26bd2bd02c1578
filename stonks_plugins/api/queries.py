"""Read-only queries the API needs and the manager does not offer in a pageable form.

``manager.events(name, limit)`` returns a sliced queryset, which cannot be filtered or paged;
the events endpoint needs the whole (lazy) history of one plugin. This reads, never writes.
"""

from __future__ import annotations

from django.db.models import QuerySet

from ..models import Plugin, PluginEvent


def plugin_events(plugin: Plugin) -> QuerySet[PluginEvent]:
    """One plugin's events, newest first (the model's ordering, tie-broken by id)."""
    return PluginEvent.objects.filter(plugin=plugin).select_related("plugin")
