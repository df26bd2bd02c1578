"""``PluginAdmin``: the plugin list and the plugin page. The list's columns and filters and the
page's layout are declared here; what the page shows comes from ``console``, the operator
actions from ``actions``, installing from ``install``, instances from ``instances``.

Plugins come from discovery, so nobody adds or deletes a row here; the only form a plugin page
saves is its config, through ``manager.set_config`` with the operator as the actor.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy

from ..config.shown import ANY_PLUGIN, scrubber_for
from ..config.validation import ConfigInvalid
from ..config.versions import ConfigView, StaleConfig
from ..manager import manager
from ..models import Plugin
from ..trust import describe as describe_trust
from . import console
from .actions import ActionsAdminMixin
from .badges import health_badge, state_badge, trust_badge
from .filters import HealthFilter, with_latest_health
from .forms import SUBMIT_FIELD, ConfigForm
from .install import InstallAdminMixin
from .instances import InstancesAdminMixin
from .labels import label_fields

label_fields()  # the model fields' labels on these pages, in the active language


@admin.register(Plugin)
class PluginAdmin(ActionsAdminMixin, InstallAdminMixin, InstancesAdminMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "state_badge",
        "enabled",
        "type",
        "version",
        "source",
        "health_badge",
        "trust_badge",
        "last_error",
    )
    list_filter = ("state", "type", "source", "enabled", "missing", HealthFilter)
    search_fields = ("name", "display_name", "description", "error_code", "error_message")
    list_per_page = 100
    fieldsets = (
        (
            gettext_lazy("State"),
            {
                "fields": (
                    "state_badge",
                    "enabled",
                    "missing",
                    "error_display",
                    "trust_display",
                    "revision",
                    "consecutive_unhealthy",
                    "state_changed_at",
                    "last_seen_at",
                )
            },
        ),
        (
            gettext_lazy("Plugin"),
            {
                "classes": ("collapse",),
                "fields": (
                    "name",
                    "display_name",
                    "declared_name",
                    "version",
                    "type",
                    "source",
                    "location",
                    "description",
                    "manifest_hash",
                    "discovered_at",
                    "updated_at",
                ),
            },
        ),
        (
            gettext_lazy("Problems"),
            {"classes": ("collapse",), "fields": ("error_details_json", "warnings_json")},
        ),
    )
    readonly_fields = (
        *(f.name for f in Plugin._meta.fields),
        "state_badge",
        "error_display",
        "trust_badge",
        "trust_display",
        "error_details_json",
        "warnings_json",
    )
    actions = [
        "enable_plugins",  # these five: ActionsAdminMixin
        "disable_plugins",
        "reload_plugins",
        "check_health",
        "sync",
        "uninstall_plugins",  # these two: InstallAdminMixin
        "purge_plugins",
    ]
    change_form_template = "admin/stonks_plugins/plugin/change_form.html"
    change_list_template = "admin/stonks_plugins/plugin/change_list.html"

    class Media:
        css = {"all": ("stonks_plugins/console.css",)}

    # -- permissions: plugins come from discovery, and the audit trail is kept -------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Plugin | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Plugin]:
        return with_latest_health(super().get_queryset(request))

    # -- columns ---------------------------------------------------------------------------
    @admin.display(description=gettext_lazy("state"), ordering="state")
    def state_badge(self, obj: Plugin) -> str:
        return state_badge(obj.state)

    @admin.display(description=gettext_lazy("health"), ordering="latest_health")
    def health_badge(self, obj: Plugin) -> str:
        return health_badge(getattr(obj, "latest_health", None))

    @admin.display(description=gettext_lazy("trust"))
    def trust_badge(self, obj: Plugin) -> str:
        return trust_badge(obj.trust, obj.source)

    @admin.display(description=gettext_lazy("trust"))
    def trust_display(self, obj: Plugin) -> str:
        return format_html(
            '{} <span class="so-trust">{}</span>',
            trust_badge(obj.trust, obj.source),
            scrubber_for(obj).text(describe_trust(obj.trust, source=obj.source)),
        )

    @admin.display(description=gettext_lazy("last error"), ordering="error_code")
    def last_error(self, obj: Plugin) -> str:
        if not obj.error_code:
            return "—"
        message = ANY_PLUGIN.text(obj.error_message)
        short = message if len(message) <= 70 else message[:67] + "…"
        return format_html(
            '<span class="so-error" title="{}"><code>{}</code> {}</span>',
            message,
            obj.error_code,
            short,
        )

    @admin.display(description=gettext_lazy("error"))
    def error_display(self, obj: Plugin) -> str:
        if not obj.error_code:
            return "—"
        return format_html(
            '<span class="so-error"><code>{}</code> {}</span>',
            obj.error_code,
            scrubber_for(obj).text(obj.error_message),
        )

    @admin.display(description=gettext_lazy("error details"))
    def error_details_json(self, obj: Plugin) -> str:
        return format_html("<pre class='so-json'>{}</pre>", console.pretty(obj.error_details))

    @admin.display(description=gettext_lazy("warnings"))
    def warnings_json(self, obj: Plugin) -> str:
        return format_html("<pre class='so-json'>{}</pre>", console.pretty(obj.warnings))

    # -- pages -------------------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_overview"
        view = self.admin_site.admin_view(self.overview_view)
        return [path("overview/", view, name=name), *super().get_urls()]

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        plugins = list(with_latest_health(Plugin.objects.all()).order_by("name"))
        changelist = self._url("changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Plugin console"),
            "opts": self.opts,
            "media": self.media,
            **console.overview(plugins, changelist),
            "can_change": self.has_change_permission(request),
            "sync_url": self._url("sync"),
            "changelist_url": changelist,
        }
        return TemplateResponse(request, "admin/stonks_plugins/plugin/overview.html", context)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "POST":
            self._require_change(request)
        context = {
            **(extra_context or {}),
            "overview_url": self._url("overview"),
            "sync_url": self._url("sync"),
            "can_change": self.has_change_permission(request),
        }
        return super().changelist_view(request, extra_context=context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        plugin = self.get_object(request, unquote(object_id))
        if plugin is None or not self.has_view_or_change_permission(request, plugin):
            return super().change_view(request, object_id, form_url, extra_context)
        can_change = self.has_change_permission(request, plugin)
        bound: ConfigForm | None = None
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            if SUBMIT_FIELD not in request.POST:
                # The model's own fields are read-only: there is nothing else to save here.
                return HttpResponseRedirect(request.path)
            outcome = self._save_config(request, plugin)
            if isinstance(outcome, HttpResponse):
                return outcome
            bound = outcome
            # Render the page again around the bound form: to the model form below this is a
            # plain view of the plugin.
            request.method = "GET"
        context = {
            **(extra_context or {}),
            **console.plugin_page(
                request, plugin, can_change, bound, lambda verb: self._url("do", plugin.pk, verb)
            ),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }
        return super().change_view(request, object_id, form_url, context)

    # -- saving the config -------------------------------------------------------------------
    def _save_config(self, request: HttpRequest, plugin: Plugin) -> ConfigForm | HttpResponse:
        try:
            schema = manager.config_schema(plugin.name)
            latest = manager.get_config(plugin.name)
        except Exception as exc:
            text = gettext("config cannot be edited: %(error)s") % {"error": exc}
            self.message_user(request, ANY_PLUGIN.text(text), messages.ERROR)
            return HttpResponseRedirect(request.path)
        form = ConfigForm(schema, latest.data, latest.version, request.POST)
        if not form.is_valid():
            return form
        try:
            saved = manager.set_config(
                plugin.name,
                form.config_data(),
                actor=request.user.get_username(),
                base_version=form.base_version,
            )
        except ConfigInvalid as exc:
            if exc.issues:
                form.add_issues(exc.issues)
            else:
                form.add_error(None, str(exc))
            return form
        except StaleConfig as exc:
            form.add_stale(str(exc))
            return form
        self._report_saved(request, plugin, saved)
        return HttpResponseRedirect(request.path + "#config")

    def _report_saved(self, request: HttpRequest, plugin: Plugin, saved: ConfigView) -> None:
        values = {
            "version": saved.version,
            "changed": ", ".join(saved.changed) or gettext("nothing changed"),
            "status": saved.status,
        }
        if saved.status == "active":
            text = gettext(
                "Saved config version %(version)s (%(changed)s): active — in effect now."
            )
            self.message_user(request, text % values, messages.SUCCESS)
        elif saved.status == "failed":
            values["why"] = scrubber_for(plugin).text(saved.message)
            text = gettext(
                "Saved config version %(version)s (%(changed)s), but the plugin refused it: "
                "failed — %(why)s. The previous config stays in effect."
            )
            self.message_user(request, text % values, messages.ERROR)
        else:
            text = gettext(
                "Saved config version %(version)s (%(changed)s): %(status)s — being applied by "
                "the workers; reload to see it."
            )
            self.message_user(request, text % values, messages.INFO)
