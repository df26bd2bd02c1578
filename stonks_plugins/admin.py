"""Django admin for plugins: a thin layer over the manager (the full console comes later)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .errors import IllegalTransition, PluginNotFound
from .manager import manager
from .models import Plugin, PluginConfig, PluginEvent


class PluginEventInline(admin.TabularInline):
    model = PluginEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "from_state", "to_state", "reason", "actor")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    max_num = 0


@admin.register(Plugin)
class PluginAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "type", "source", "state", "enabled", "error_code")
    list_filter = ("state", "type", "source", "enabled", "missing")
    search_fields = ("name", "display_name", "description")
    readonly_fields = [f.name for f in Plugin._meta.fields]
    inlines = [PluginEventInline]
    actions = ["enable_plugins", "disable_plugins", "sync_plugins"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # plugins come from discovery, not from a form

    def has_delete_permission(self, request: HttpRequest, obj: Plugin | None = None) -> bool:
        return False

    def _each(self, request: HttpRequest, queryset: QuerySet[Plugin], verb: str) -> None:
        action = manager.enable if verb == "enable" else manager.disable
        actor = request.user.get_username()
        for plugin in queryset:
            try:
                result = action(plugin.name, actor=actor)
            except (PluginNotFound, IllegalTransition) as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            level = messages.ERROR if result.error else messages.SUCCESS
            detail = f" ({result.error_code}: {result.error_message})" if result.error else ""
            self.message_user(request, f"{result.name}: {result.state}{detail}", level)

    @admin.action(description="Enable selected plugins", permissions=["change"])
    def enable_plugins(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        self._each(request, queryset, "enable")

    @admin.action(description="Disable selected plugins", permissions=["change"])
    def disable_plugins(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        self._each(request, queryset, "disable")

    @admin.action(
        description="Sync plugins from disk and installed packages", permissions=["change"]
    )
    def sync_plugins(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        report = manager.sync(actor=request.user.get_username())
        self.message_user(
            request,
            f"sync: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.failed)} failed, {len(report.missing)} missing",
        )


@admin.register(PluginEvent)
class PluginEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "plugin", "kind", "from_state", "to_state", "reason", "actor")
    list_filter = ("kind", "plugin")
    readonly_fields = [f.name for f in PluginEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PluginConfig)
class PluginConfigAdmin(admin.ModelAdmin):
    list_display = ("plugin", "version", "is_active", "created_by", "created_at")
    # The data may hold credentials; it is not shown until secrets are masked.
    exclude = ("data",)
    readonly_fields = [f.name for f in PluginConfig._meta.fields if f.name != "data"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
