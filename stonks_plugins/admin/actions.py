"""The console's operator actions: enable, disable, reload, check health and sync, as list
actions over the selected plugins, as buttons on a plugin page (``<id>/do/<verb>/``) and as
the list's "Sync now" (``sync-now/``). Each is a manager call with the operator's username as
the actor, reported as one message per plugin; one plugin failing never stops the rest. A
mixin of ``PluginAdmin``.

A disable that enabled plugins need asks first (``dependents.disable_confirmation``), then runs
forced. Every action is a change: the change permission and a POST.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, gettext_lazy

from ..config.shown import ANY_PLUGIN
from ..errors import IllegalTransition, PluginError, PluginNotFound
from ..health import Health
from ..manager import manager
from ..models import Plugin
from .console import ACTIONS
from .dependents import disable_confirmation
from .labels import health_label, state_label

Runner = Callable[[str, str], tuple[int, str]]
"""``(name, actor) -> (message level, message)``: one action on one plugin."""

# -- messages: one whole sentence per verb, so that each language can word it its own way -----
_COULD_NOT = {
    "enable": gettext_lazy("Could not enable %(name)s: %(error)s"),
    "disable": gettext_lazy("Could not disable %(name)s: %(error)s"),
    "reload": gettext_lazy("Could not reload %(name)s: %(error)s"),
    "check health": gettext_lazy("Could not check health of %(name)s: %(error)s"),
}
_CHANGED = {
    "enabled": gettext_lazy("Enabled %(name)s: now %(state)s"),
    "disabled": gettext_lazy("Disabled %(name)s: now %(state)s"),
    "reloaded": gettext_lazy("Reloaded %(name)s: now %(state)s"),
}
_CHANGED_IN_ERROR = {
    "enabled": gettext_lazy("Enabled %(name)s, but it is in %(state)s — %(code)s: %(message)s"),
    "disabled": gettext_lazy("Disabled %(name)s, but it is in %(state)s — %(code)s: %(message)s"),
    "reloaded": gettext_lazy("Reloaded %(name)s, but it is in %(state)s — %(code)s: %(message)s"),
}
_SYNCED = (
    (gettext_lazy("Sync: %(name)s added"), "added", messages.SUCCESS),
    (gettext_lazy("Sync: %(name)s updated"), "updated", messages.SUCCESS),
    (gettext_lazy("Sync: %(name)s activated"), "activated", messages.SUCCESS),
    (gettext_lazy("Sync: %(name)s missing (kept, with its config)"), "missing", messages.WARNING),
)


def could_not(verb: str, name: str, error: str) -> str:
    return str(_COULD_NOT[verb]) % {"name": name, "error": error}


def _state_change(verb: str, action: Callable[..., Plugin]) -> Runner:
    def run(name: str, actor: str) -> tuple[int, str]:
        plugin = action(name, actor=actor)
        values = {"name": name, "state": state_label(plugin.state)}
        if plugin.error_code:
            values.update(code=plugin.error_code, message=plugin.error_message)
            return messages.ERROR, str(_CHANGED_IN_ERROR[verb]) % values
        return messages.SUCCESS, str(_CHANGED[verb]) % values

    return run


def _health(name: str, actor: str) -> tuple[int, str]:
    outcome = manager.check_health(name, actor=actor)[0]
    status = outcome.status
    level = {
        Health.HEALTHY: messages.SUCCESS,
        Health.DEGRADED: messages.WARNING,
    }.get(status.status, messages.ERROR)
    values = {
        "name": name,
        "status": health_label(status.status.value),
        "ms": f"{outcome.duration_ms:.1f}",
        "message": status.message,
    }
    if status.message:
        return level, gettext("Health of %(name)s: %(status)s (%(ms)s ms): %(message)s") % values
    return level, gettext("Health of %(name)s: %(status)s (%(ms)s ms)") % values


def runner(verb: str) -> Runner:
    """The action ``verb`` (one of ``console.ACTIONS``) on one plugin."""
    if verb == "check_health":
        return _health
    # A disable runs once the operator confirmed it (disable_confirmation): forced.
    forced = functools.partial(manager.disable, force=True)
    action: dict[str, Callable[..., Plugin]] = {
        "enable": manager.enable,
        "disable": forced,
        "reload": manager.reload,
    }
    past = {"enable": "enabled", "disable": "disabled", "reload": "reloaded"}
    return _state_change(past[verb], action[verb])


class ActionsAdminMixin(admin.ModelAdmin):
    """The actions (list them in ``actions``), ``sync-now/`` and ``<id>/do/<verb>/``."""

    def _url(self, name: str, *args: Any) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_{name}", args=args)

    def _require_change(self, request: HttpRequest, obj: Plugin | None = None) -> None:
        if not self.has_change_permission(request, obj):
            raise PermissionDenied

    def get_urls(self) -> list[Any]:
        info = (self.opts.app_label, self.opts.model_name)
        wrap = self.admin_site.admin_view
        return [
            path("sync-now/", wrap(self.sync_view), name="{}_{}_sync".format(*info)),
            path(
                "<path:object_id>/do/<str:verb>/",
                wrap(self.plugin_action_view),
                name="{}_{}_do".format(*info),
            ),
            *super().get_urls(),
        ]

    def _run(self, request: HttpRequest, names: Iterable[str], verb: str, run: Runner) -> None:
        """One message per plugin, errors included; one plugin failing never stops the rest."""
        actor = request.user.get_username()
        for name in names:
            try:
                level, text = run(name, actor)
            except (PluginNotFound, IllegalTransition, PluginError) as exc:
                level, text = messages.ERROR, could_not(verb, name, str(exc))
            except Exception as exc:  # a plugin's fault must not cost the operator the page
                level, text = (
                    messages.ERROR,
                    could_not(verb, name, f"{type(exc).__name__}: {exc}"),
                )
            self.message_user(request, ANY_PLUGIN.text(text), level)

    def _sync(self, request: HttpRequest) -> None:
        try:
            report = manager.sync(actor=request.user.get_username())
        except Exception as exc:
            text = gettext("Sync failed: %(error)s") % {"error": exc}
            self.message_user(request, ANY_PLUGIN.text(text), messages.ERROR)
            return
        counts = {
            "added": len(report.added),
            "updated": len(report.updated),
            "activated": len(report.activated),
            "failed": len(report.failed),
            "missing": len(report.missing),
            "unchanged": len(report.unchanged),
        }
        summary = gettext(
            "Sync: %(added)d added, %(updated)d updated, %(activated)d activated, "
            "%(failed)d failed, %(missing)d missing, %(unchanged)d unchanged"
        )
        self.message_user(request, summary % counts, messages.INFO)
        rows = {p.name: p for p in Plugin.objects.filter(name__in=report.failed)}
        for name in report.failed:
            row = rows.get(name)
            if row and row.error_code:
                text = gettext("Sync: %(name)s failed — %(code)s: %(message)s") % {
                    "name": name,
                    "code": row.error_code,
                    "message": row.error_message,
                }
            else:
                text = gettext("Sync: %(name)s failed") % {"name": name}
            self.message_user(request, ANY_PLUGIN.text(text), messages.ERROR)
        for label, outcome, level in _SYNCED:
            for name in getattr(report, outcome):
                self.message_user(request, str(label) % {"name": name}, level)

    # -- list actions ------------------------------------------------------------------------
    def _names(self, queryset: QuerySet[Plugin]) -> list[str]:
        return list(queryset.values_list("name", flat=True))

    @admin.action(description=gettext_lazy("Enable selected plugins"), permissions=["change"])
    def enable_plugins(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        self._run(request, self._names(queryset), "enable", runner("enable"))

    @admin.action(description=gettext_lazy("Disable selected plugins"), permissions=["change"])
    def disable_plugins(
        self, request: HttpRequest, queryset: QuerySet[Plugin]
    ) -> HttpResponse | None:
        names = self._names(queryset)
        pks = list(queryset.values_list("pk", flat=True))
        back = self._url("changelist")
        page = disable_confirmation(
            self, request, names, action="disable_plugins", pks=pks, back_url=back
        )
        if page is not None:  # enabled plugins need some of them: ask first
            return page
        self._run(request, names, "disable", runner("disable"))
        return None

    @admin.action(description=gettext_lazy("Reload selected plugins"), permissions=["change"])
    def reload_plugins(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        self._run(request, self._names(queryset), "reload", runner("reload"))

    @admin.action(
        description=gettext_lazy("Check health of selected plugins"), permissions=["change"]
    )
    def check_health(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        self._run(request, self._names(queryset), "check health", runner("check_health"))

    @admin.action(
        description=gettext_lazy("Sync all plugins from disk and packages (selection ignored)"),
        permissions=["change"],
    )
    def sync(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        self._sync(request)

    # -- pages that only take a POST -----------------------------------------------------------
    def sync_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require_change(request)
        self._sync(request)
        # `next` comes from the page's form, but anyone can post another: only a page of
        # this site is followed, never an absolute URL to somewhere else.
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            target = self._url("changelist")
        return HttpResponseRedirect(target)

    def plugin_action_view(self, request: HttpRequest, object_id: str, verb: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        plugin = get_object_or_404(Plugin, pk=unquote(object_id))
        self._require_change(request, plugin)
        if verb not in ACTIONS:
            raise PermissionDenied(gettext("unknown action %(verb)r") % {"verb": verb})
        if verb == "disable":
            back = self._url("change", plugin.pk)
            page = disable_confirmation(self, request, [plugin.name], back_url=back)
            if page is not None:  # enabled plugins need it: ask first
                return page
        self._run(request, [plugin.name], verb.replace("_", " "), runner(verb))
        return HttpResponseRedirect(self._url("change", plugin.pk))
