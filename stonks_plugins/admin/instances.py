"""The console's instances: on a plugin's page, its instances (``NAME:LABEL``) with links, a
form to add one and, on an instance's page, a button to remove it. A thin layer over the
manager, mixed into ``PluginAdmin``; instances are plugin rows, so the plugin list shows them
like any plugin.

Adding and removing are changes: they need the change permission, and a POST only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.translation import gettext

from ..errors import PluginNotFound
from ..instance_names import LABEL_PATTERN, InvalidLabel
from ..instances import InstanceRefused
from ..manager import manager
from ..models import Plugin
from ..redaction import scrub_text
from .labels import state_label


class InstancesAdminMixin(admin.ModelAdmin):
    """``<id>/instances/add/`` and ``<id>/instances/remove/`` (POST), and the page's
    "Instances" section (``instances_section`` in the change form's context)."""

    def _instance_url(self, name: str, *args: Any) -> str:
        info = (self.opts.app_label, self.opts.model_name)
        return reverse("admin:{}_{}_{}".format(*info, name), args=args)

    def get_urls(self) -> list[Any]:
        info = (self.opts.app_label, self.opts.model_name)
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/instances/add/",
                wrap(self.add_instance_view),
                name="{}_{}_add_instance".format(*info),
            ),
            path(
                "<path:object_id>/instances/remove/",
                wrap(self.remove_instance_view),
                name="{}_{}_remove_instance".format(*info),
            ),
            *super().get_urls(),
        ]

    def _changing(self, request: HttpRequest, object_id: str) -> Plugin:
        plugin = get_object_or_404(Plugin, pk=unquote(object_id))
        if not self.has_change_permission(request, plugin):
            raise PermissionDenied
        return plugin

    def add_instance_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        plugin = self._changing(request, object_id)
        label = request.POST.get("label", "").strip()
        actor = request.user.get_username()
        try:
            added = manager.add_instance(plugin.name, label, actor=actor)
        except (InvalidLabel, InstanceRefused, PluginNotFound) as exc:
            self.message_user(request, scrub_text(str(exc)), messages.ERROR)
            return HttpResponseRedirect(self._instance_url("change", quote(plugin.pk)))
        values = {"name": added.name, "state": state_label(added.state)}
        if added.error_code:
            values.update(code=added.error_code, message=added.error_message)
            text = gettext("Added %(name)s: %(state)s — %(code)s: %(message)s") % values
            self.message_user(request, scrub_text(text), messages.WARNING)
        else:
            text = gettext(
                "Added %(name)s (%(state)s). Configure it below: it runs on the config schema's "
                "defaults until a config is saved."
            )
            self.message_user(request, text % values, messages.SUCCESS)
        return HttpResponseRedirect(self._instance_url("change", quote(added.pk)) + "#config")

    def remove_instance_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        plugin = self._changing(request, object_id)
        actor = request.user.get_username()
        try:
            base = manager.remove_instance(plugin.base_name or plugin.name, plugin.label, actor)
        except (InvalidLabel, InstanceRefused, PluginNotFound) as exc:
            self.message_user(request, scrub_text(str(exc)), messages.ERROR)
            return HttpResponseRedirect(self._instance_url("change", quote(plugin.pk)))
        text = gettext("Removed %(name)s with its config, secrets and history.")
        self.message_user(request, text % {"name": plugin.name}, messages.INFO)
        return HttpResponseRedirect(self._instance_url("change", quote(base.pk)))

    def instances_section(self, request: HttpRequest, plugin: Plugin) -> dict[str, Any]:
        """The context of ``_instances.html``: the plugin's instances (its default one
        first), with links; the add form when the plugin may have instances."""
        try:
            rows = manager.list_instances(plugin.name)
        except PluginNotFound:
            rows = [plugin]
        can_change = self.has_change_permission(request, plugin)
        base = rows[0]
        return {
            "instances": [
                {
                    "name": row.name,
                    "label": row.label,
                    "state": row.state,
                    "state_label": state_label(row.state),
                    "enabled": row.enabled,
                    "current": row.pk == plugin.pk,
                    "url": self._instance_url("change", quote(row.pk)),
                }
                for row in rows
            ],
            "instance_base": base,
            "instance_add_url": self._instance_url("add_instance", quote(base.pk))
            if can_change and not base.missing
            else "",
            "instance_remove_url": self._instance_url("remove_instance", quote(plugin.pk))
            if can_change and plugin.label
            else "",
            "instance_label_pattern": LABEL_PATTERN,
        }

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        pk = unquote(object_id)
        plugin = Plugin.objects.filter(pk=int(pk)).first() if pk.isdigit() else None
        context = dict(extra_context or {})
        if plugin is not None and self.has_view_or_change_permission(request, plugin):
            context["instances_section"] = self.instances_section(request, plugin)
        return super().change_view(request, object_id, form_url, context)
