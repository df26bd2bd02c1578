"""The audit trail and the saved config versions, as read-only admin lists: the engine writes
them (every action is an event, every save a version), never a form."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy

from ..config.shown import ANY_PLUGIN, masked_data, scrubber
from ..models import PluginConfig, PluginEvent
from .console import pretty
from .readonly import ReadOnlyAdminMixin


@admin.register(PluginEvent)
class PluginEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "plugin", "kind", "from_state", "to_state", "why", "actor")
    list_filter = ("kind", "plugin")
    search_fields = ("plugin__name", "reason", "actor")
    list_select_related = ("plugin",)
    fields = (
        "plugin",
        "kind",
        "from_state",
        "to_state",
        "why",
        "actor",
        "created_at",
        "details_json",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ("stonks_plugins/console.css",)}

    @admin.display(description=gettext_lazy("reason"), ordering="reason")
    def why(self, obj: PluginEvent) -> str:
        return ANY_PLUGIN.text(obj.reason)

    @admin.display(description=gettext_lazy("details"))
    def details_json(self, obj: PluginEvent) -> str:
        return format_html("<pre class='so-json'>{}</pre>", pretty(obj.details))


@admin.register(PluginConfig)
class PluginConfigAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Versions as saved; the data is shown masked (secrets are write-only)."""

    list_display = ("plugin", "version", "status", "is_active", "created_by", "created_at")
    list_filter = ("status", "plugin")
    list_select_related = ("plugin",)
    fields = (
        "plugin",
        "version",
        "status",
        "is_active",
        "base_version",
        "changed",
        "why",
        "created_by",
        "created_at",
        "applied_at",
        "masked_data",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ("stonks_plugins/console.css",)}

    @admin.display(description=gettext_lazy("message"))
    def why(self, obj: PluginConfig) -> str:
        return scrubber(obj.plugin.name).text(obj.message)

    @admin.display(description=gettext_lazy("data (secrets masked)"))
    def masked_data(self, obj: PluginConfig) -> str:
        try:
            shown = masked_data(obj)
        except Exception as exc:
            return gettext("cannot be shown: %(error)s") % {"error": ANY_PLUGIN.text(str(exc))}
        return format_html("<pre class='so-json'>{}</pre>", pretty(shown))
