"""The Django admin plugin console: a thin layer over ``stonks_plugins.manager.manager``.

Every change — enable, disable, reload, health check, sync, a new config — is a manager call
with the operator's username as the actor, so the admin, the API, the CLI and the tasks behave
alike and leave the same events. The admin itself only reads and presents:

- the plugin list: state badges, type, version, source, latest health, last error; filters,
  search and bulk actions that report one message per plugin;
- the plugin page: its fields, manifest, capabilities and services, its config as a form
  generated from the config JSON Schema (``admin_forms``), config history, events, health
  history and this process's metrics, with small server-rendered SVG charts;
- the console overview (``overview/``): every plugin's state and health at a glance.

Read-only staff (``view_plugin`` only) see all of it and change nothing: no action buttons,
a disabled config form, and any POST is refused with 403. Secrets never reach a page: the
config is read masked, and free text (events, health, errors, apply messages) is scrubbed of
secret-looking pairs and of the plugin's stored secret values.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext, gettext_lazy, pgettext_lazy

from .admin_dependents import dependencies_context, disable_confirmation
from .admin_forms import SUBMIT_FIELD, ConfigForm
from .admin_install import InstallAdminMixin
from .admin_instances import InstancesAdminMixin
from .admin_labels import health_label, label_fields, state_label, trust_label
from .admin_readonly import ReadOnlyAdminMixin
from .config import versions
from .config.system import secret_values as config_secret_values
from .config.validation import ConfigInvalid
from .config.versions import ConfigView, StaleConfig
from .errors import IllegalTransition, PluginError, PluginNotFound
from .health import Health
from .imports import ImportReportUnavailable
from .lifecycle.states import PluginState
from .manager import manager
from .manifest.texts import localized, translations_of
from .models import HealthCheck, Plugin, PluginConfig, PluginEvent
from .redaction import redact, scrub_text
from .trust import describe as describe_trust

logger = logging.getLogger(__name__)

EVENTS_SHOWN = 50
LOGS_SHOWN = 50
HEALTH_SHOWN = 50
HISTORY_MINUTES = 60
STATES = [s.value for s in PluginState]
HEALTH_STATES = [h.value for h in Health]


# -- presentation helpers -------------------------------------------------------------------
def state_badge(state: str) -> str:
    # The class keeps the stable code; the text is the state's name in the active language.
    return format_html(
        '<span class="so-badge so-state-{}">{}</span>', state or "unknown", state_label(state)
    )


def health_badge(status: str | None) -> str:
    if not status:
        return format_html('<span class="so-badge so-health-none">{}</span>', health_label(None))
    return format_html(
        '<span class="so-badge so-health-{}">{}</span>', status, health_label(status)
    )


# The health badge colours say it: trusted green, unsigned grey, doubtful amber, refused red.
_TRUST_COLOURS = {
    "signed": "healthy",
    "unsigned": "none",
    "untrusted_key": "degraded",
    "bad_signature": "unhealthy",
    "tampered": "unhealthy",
}


def trust_badge(trust: Any, source: str = "") -> str:
    status = trust.get("status") if isinstance(trust, dict) else None
    if source == "legacy":
        return format_html(
            '<span class="so-badge so-health-none">{}</span>', pgettext_lazy("trust", "built in")
        )
    if status not in _TRUST_COLOURS:
        return format_html('<span class="so-badge so-health-none">{}</span>', health_label(None))
    if status == "signed" and not trust.get("trusted"):
        colour = "degraded"  # a valid signature over no lock
    else:
        colour = _TRUST_COLOURS[status]
    return format_html(
        '<span class="so-badge so-health-{}" title="{}">{}</span>',
        colour,
        describe_trust(trust, short=True),
        trust_label(status),
    )


def secret_values(plugin: Plugin) -> list[str]:
    """The clear values of this plugin's secrets (see ``config.system.secret_values``), longest
    first, so text shown on its page is scrubbed of them even when a plugin echoed one."""
    return sorted(config_secret_values(plugin.name), key=len, reverse=True)


def _scrub(text: str, secrets: Iterable[str] = ()) -> str:
    return scrub_text(str(text or ""), secrets)


def _pretty(value: Any, secrets: Iterable[str] = ()) -> str:
    return json.dumps(redact(value, secrets), indent=2, sort_keys=False, default=str)


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


def could_not(verb: str, name: str, error: str) -> str:
    return str(_COULD_NOT[verb]) % {"name": name, "error": error}


def shown_texts(plugin: Plugin, language: str | None) -> dict[str, str]:
    """The plugin's display name and description in ``language`` when its manifest has them
    (``plugin.translations``), else as stored."""
    return localized(
        translations_of(plugin.manifest),
        language,
        display_name=plugin.display_name,
        description=plugin.description,
    )


label_fields()  # the model fields' labels on these pages, in the active language


# -- charts (server-rendered SVG; no scripts, no external libraries) ------------------------
def metrics_chart(operations: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """Bars per operation: calls and errors on one scale, average and max latency on
    another. Geometry only; ``_metrics_chart.html`` draws it."""
    if not operations:
        return None
    label_w, bar_w, gap, row_h, top = 170, 210, 40, 30, 26
    max_calls = max(max(s["calls"], _errors(s)) for _, s in operations) or 1
    max_ms = max(float(s["max_ms"]) for _, s in operations) or 1.0
    x_lat = label_w + bar_w + gap
    rows = []
    for i, (op, s) in enumerate(operations):
        y = top + i * row_h
        widths = {
            "calls_w": bar_w * s["calls"] / max_calls,
            "errors_w": bar_w * _errors(s) / max_calls,
            "avg_w": bar_w * float(s["avg_ms"]) / max_ms,
            "max_w": bar_w * float(s["max_ms"]) / max_ms,
        }
        rows.append(
            {
                "op": op,
                "y": y,
                "y2": y + 12,
                "ty": y + 12,
                "calls": s["calls"],
                "errors": _errors(s),
                "avg_ms": round(float(s["avg_ms"]), 3),
                "max_ms": round(float(s["max_ms"]), 3),
                **{k: round(w, 1) for k, w in widths.items()},
                "calls_tx": round(label_w + max(widths["calls_w"], widths["errors_w"]) + 4, 1),
                "lat_tx": round(x_lat + max(widths["avg_w"], widths["max_w"]) + 4, 1),
            }
        )
    return {
        "width": x_lat + bar_w + 90,
        "height": top + len(rows) * row_h + 6,
        "label_w": label_w,
        "x_calls": label_w,
        "x_lat": x_lat,
        "bar_w": bar_w,
        "rows": rows,
        "max_calls": max_calls,
        "max_ms": round(max_ms, 3),
    }


def history_chart(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Calls (bars) and errors (overlaid bars) per minute on one scale, average latency (a
    line) on another; the shared time series of every process. Geometry only;
    ``_history_chart.html`` draws it. ``None`` when nothing ran in the window."""
    if not points or not any(p["calls"] or p["errors"] for p in points):
        return None
    left, top, height, step, right = 44, 22, 110, 8, 52
    max_calls = max(max(p["calls"], p["errors"]) for p in points) or 1
    max_ms = max(float(p["avg_ms"]) for p in points) or 1.0
    base = top + height
    bars, line = [], []
    for i, p in enumerate(points):
        x = left + i * step
        calls_h = height * p["calls"] / max_calls
        errors_h = height * p["errors"] / max_calls
        avg = float(p["avg_ms"])
        at = timezone.localtime(p["minute"]).strftime("%H:%M")
        bars.append(
            {
                "x": x,
                "at": at,
                "calls": p["calls"],
                "errors": p["errors"],
                "avg_ms": round(avg, 3),
                "max_ms": round(float(p["max_ms"]), 3),
                "calls_y": round(base - calls_h, 1),
                "calls_h": round(calls_h, 1),
                "errors_y": round(base - errors_h, 1),
                "errors_h": round(errors_h, 1),
            }
        )
        if p["calls"]:
            line.append(f"{x + step / 2:g},{round(base - height * avg / max_ms, 1):g}")
    width = left + len(points) * step + right
    return {
        "width": width,
        "height": base + 18,
        "left": left,
        "top": top,
        "base": base,
        "step": step - 2,
        "x_end": left + len(points) * step,
        "bars": bars,
        "line": " ".join(line),
        "max_calls": max_calls,
        "max_ms": round(max_ms, 3),
        "first": bars[0]["at"],
        "last": bars[-1]["at"],
        "total_calls": sum(p["calls"] for p in points),
        "total_errors": sum(p["errors"] for p in points),
        "minutes": len(points),
    }


def _errors(stats: dict[str, Any]) -> int:
    return int(stats.get("errors", 0)) + int(stats.get("timeouts", 0))


def health_chart(checks: list[HealthCheck]) -> dict[str, Any] | None:
    """One bar per check, oldest first: its height is how long it took, its colour the
    status — latency and health over time."""
    if not checks:
        return None
    ordered = sorted(checks, key=lambda c: (c.created_at, c.id))
    height, top, bottom, left = 120, 10, 20, 64
    slot = max(6, min(24, 600 // len(ordered)))
    width = max(320, left + len(ordered) * slot + 10)
    peak = max(c.duration_ms for c in ordered) or 1.0
    bars = []
    for i, c in enumerate(ordered):
        h = max(2.0, (height - top - bottom) * c.duration_ms / peak)
        bars.append(
            {
                "x": left + i * slot,
                "y": round(height - bottom - h, 1),
                "w": slot - 2,
                "h": round(h, 1),
                "status": c.status,
                "ms": round(c.duration_ms, 2),
                "at": c.created_at,
            }
        )
    return {
        "width": width,
        "end": max(left + len(bars) * slot, left + 90),  # "oldest" and "latest" apart
        "height": height,
        "base": height - bottom,
        "top": top,
        "left": left,
        "peak": round(peak, 2),
        "bars": bars,
    }


# -- filters --------------------------------------------------------------------------------
class HealthFilter(admin.SimpleListFilter):
    title = gettext_lazy("health")
    parameter_name = "health"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*((h, health_label(h)) for h in HEALTH_STATES), ("none", health_label(None))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "none":
            return queryset.filter(latest_health__isnull=True)
        if value in HEALTH_STATES:
            return queryset.filter(latest_health=value)
        return queryset


def with_latest_health(qs: QuerySet[Plugin]) -> QuerySet[Plugin]:
    latest = HealthCheck.objects.filter(plugin=OuterRef("pk")).order_by("-created_at", "-id")
    return qs.annotate(
        latest_health=Subquery(latest.values("status")[:1]),
        latest_health_at=Subquery(latest.values("created_at")[:1]),
    )


# -- the plugin console ---------------------------------------------------------------------
Runner = Callable[[str, str], tuple[int, str]]


@admin.register(Plugin)
class PluginAdmin(InstallAdminMixin, InstancesAdminMixin, admin.ModelAdmin):
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
        "enable_plugins",
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
            _scrub(describe_trust(obj.trust, source=obj.source), secret_values(obj)),
        )

    @admin.display(description=gettext_lazy("last error"), ordering="error_code")
    def last_error(self, obj: Plugin) -> str:
        if not obj.error_code:
            return "—"
        message = _scrub(obj.error_message)
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
            _scrub(obj.error_message, secret_values(obj)),
        )

    @admin.display(description=gettext_lazy("error details"))
    def error_details_json(self, obj: Plugin) -> str:
        return format_html("<pre class='so-json'>{}</pre>", _pretty(obj.error_details))

    @admin.display(description=gettext_lazy("warnings"))
    def warnings_json(self, obj: Plugin) -> str:
        return format_html("<pre class='so-json'>{}</pre>", _pretty(obj.warnings))

    # -- running manager operations --------------------------------------------------------
    def _run(self, request: HttpRequest, names: Iterable[str], verb: str, runner: Runner) -> None:
        """One message per plugin, errors included; one plugin failing never stops the rest."""
        actor = request.user.get_username()
        for name in names:
            try:
                level, text = runner(name, actor)
            except (PluginNotFound, IllegalTransition, PluginError) as exc:
                level, text = messages.ERROR, could_not(verb, name, str(exc))
            except Exception as exc:  # a plugin's fault must not cost the operator the page
                level, text = (
                    messages.ERROR,
                    could_not(verb, name, f"{type(exc).__name__}: {exc}"),
                )
            self.message_user(request, _scrub(text), level)

    @staticmethod
    def _state_change(verb: str, action: Callable[..., Plugin]) -> Runner:
        def run(name: str, actor: str) -> tuple[int, str]:
            plugin = action(name, actor=actor)
            values = {"name": name, "state": state_label(plugin.state)}
            if plugin.error_code:
                values.update(code=plugin.error_code, message=plugin.error_message)
                return messages.ERROR, str(_CHANGED_IN_ERROR[verb]) % values
            return messages.SUCCESS, str(_CHANGED[verb]) % values

        return run

    @staticmethod
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
            return level, gettext(
                "Health of %(name)s: %(status)s (%(ms)s ms): %(message)s"
            ) % values
        return level, gettext("Health of %(name)s: %(status)s (%(ms)s ms)") % values

    def runner(self, verb: str) -> Runner:
        if verb == "check_health":
            return self._health
        # A disable runs once the operator confirmed it (disable_confirmation): forced.
        forced = functools.partial(manager.disable, force=True)
        action: dict[str, Callable[..., Plugin]] = {
            "enable": manager.enable,
            "disable": forced,
            "reload": manager.reload,
        }
        past = {"enable": "enabled", "disable": "disabled", "reload": "reloaded"}
        return self._state_change(past[verb], action[verb])

    def _sync(self, request: HttpRequest) -> None:
        try:
            report = manager.sync(actor=request.user.get_username())
        except Exception as exc:
            text = gettext("Sync failed: %(error)s") % {"error": exc}
            self.message_user(request, _scrub(text), messages.ERROR)
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
            self.message_user(request, _scrub(text), messages.ERROR)
        for label, names, level in (
            (gettext_lazy("Sync: %(name)s added"), report.added, messages.SUCCESS),
            (gettext_lazy("Sync: %(name)s updated"), report.updated, messages.SUCCESS),
            (gettext_lazy("Sync: %(name)s activated"), report.activated, messages.SUCCESS),
            (
                gettext_lazy("Sync: %(name)s missing (kept, with its config)"),
                report.missing,
                messages.WARNING,
            ),
        ):
            for name in names:
                self.message_user(request, str(label) % {"name": name}, level)

    # -- bulk actions ----------------------------------------------------------------------
    def _names(self, queryset: QuerySet[Plugin]) -> list[str]:
        return list(queryset.values_list("name", flat=True))

    @admin.action(description=gettext_lazy("Enable selected plugins"), permissions=["change"])
    def enable_plugins(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        self._run(request, self._names(queryset), "enable", self.runner("enable"))

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
        self._run(request, names, "disable", self.runner("disable"))
        return None

    @admin.action(description=gettext_lazy("Reload selected plugins"), permissions=["change"])
    def reload_plugins(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        self._run(request, self._names(queryset), "reload", self.runner("reload"))

    @admin.action(
        description=gettext_lazy("Check health of selected plugins"), permissions=["change"]
    )
    def check_health(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        self._run(request, self._names(queryset), "check health", self.runner("check_health"))

    @admin.action(
        description=gettext_lazy("Sync all plugins from disk and packages (selection ignored)"),
        permissions=["change"],
    )
    def sync(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        self._sync(request)

    # -- extra pages -----------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        info = (self.opts.app_label, self.opts.model_name)
        wrap = self.admin_site.admin_view
        return [
            path("overview/", wrap(self.overview_view), name="{}_{}_overview".format(*info)),
            path("sync-now/", wrap(self.sync_view), name="{}_{}_sync".format(*info)),
            path(
                "<path:object_id>/do/<str:verb>/",
                wrap(self.plugin_action_view),
                name="{}_{}_do".format(*info),
            ),
            *super().get_urls(),
        ]

    def _url(self, name: str, *args: Any) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_{name}", args=args)

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        plugins = list(with_latest_health(Plugin.objects.all()).order_by("name"))
        language = get_language()
        for p in plugins:  # shown in the active language; the codes stay in the classes
            p.shown_name = shown_texts(p, language)["display_name"]  # type: ignore[attr-defined]
            p.state_badge = state_badge(p.state)  # type: ignore[attr-defined]
            p.health_label = health_label(getattr(p, "latest_health", None))  # type: ignore[attr-defined]
        by_state = Counter(p.state for p in plugins)
        by_health = Counter(getattr(p, "latest_health", None) or "none" for p in plugins)
        changelist = self._url("changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Plugin console"),
            "opts": self.opts,
            "media": self.media,
            "plugins": plugins,
            "total": len(plugins),
            "enabled": sum(1 for p in plugins if p.enabled),
            "states": [
                {
                    "state": s,
                    "count": by_state.get(s, 0),
                    "badge": state_badge(s),
                    "url": f"{changelist}?state__exact={s}",
                }
                for s in STATES
            ],
            "healths": [
                {
                    "status": h,
                    "count": by_health.get(h, 0),
                    "badge": health_badge(None if h == "none" else h),
                    "url": f"{changelist}?health={h}",
                }
                for h in [*HEALTH_STATES, "none"]
            ],
            "can_change": self.has_change_permission(request),
            "sync_url": self._url("sync"),
            "changelist_url": changelist,
        }
        return TemplateResponse(request, "admin/stonks_plugins/plugin/overview.html", context)

    def _require_change(self, request: HttpRequest, obj: Plugin | None = None) -> None:
        if not self.has_change_permission(request, obj):
            raise PermissionDenied

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
        if verb not in ("enable", "disable", "reload", "check_health"):
            raise PermissionDenied(gettext("unknown action %(verb)r") % {"verb": verb})
        if verb == "disable":
            back = self._url("change", plugin.pk)
            page = disable_confirmation(self, request, [plugin.name], back_url=back)
            if page is not None:  # enabled plugins need it: ask first
                return page
        self._run(request, [plugin.name], verb.replace("_", " "), self.runner(verb))
        return HttpResponseRedirect(self._url("change", plugin.pk))

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

    # -- the plugin page -------------------------------------------------------------------
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
            **self.console_context(request, plugin, can_change, bound),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }
        return super().change_view(request, object_id, form_url, context)

    def _save_config(self, request: HttpRequest, plugin: Plugin) -> ConfigForm | HttpResponse:
        try:
            schema = manager.config_schema(plugin.name)
            latest = manager.get_config(plugin.name)
        except Exception as exc:
            text = gettext("config cannot be edited: %(error)s") % {"error": exc}
            self.message_user(request, _scrub(text), messages.ERROR)
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
        secrets = secret_values(plugin)
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
            values["why"] = _scrub(saved.message, secrets)
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

    def console_context(
        self, request: HttpRequest, plugin: Plugin, can_change: bool, bound: ConfigForm | None
    ) -> dict[str, Any]:
        secrets = secret_values(plugin)
        manifest = plugin.manifest if isinstance(plugin.manifest, dict) else {}
        capabilities = manifest.get("capabilities") or {}
        services = manifest.get("services") or {}
        events = list(manager.events(plugin.name, limit=EVENTS_SHOWN))
        checks = list(manager.health_history(plugin.name, limit=HEALTH_SHOWN))
        try:
            snapshot = manager.metrics(plugin.name)
        except Exception as exc:
            snapshot = {"error": str(exc)}
        stats = snapshot.get("metrics") or {}
        operations = [(op, s) for op, s in stats.items() if op != "__total__"]
        try:
            history = manager.metrics_history(plugin.name, minutes=HISTORY_MINUTES)
        except Exception:
            logger.warning("no metrics history for %s", plugin.name, exc_info=True)
            history = []
        texts = shown_texts(plugin, get_language())
        return {
            "plugin": plugin,
            "plugin_display_name": texts["display_name"],
            "plugin_description": texts["description"],
            "can_change": can_change,
            "plugin_actions": [
                (verb, label, self._url("do", plugin.pk, verb))
                for verb, label in (
                    ("enable", gettext("Enable")),
                    ("disable", gettext("Disable")),
                    ("reload", gettext("Reload")),
                    ("check_health", gettext("Check health")),
                )
            ],
            "state_badge": state_badge(plugin.state),
            "health_badge": health_badge(checks[0].status if checks else None),
            "plugin_error_message": _scrub(plugin.error_message, secrets),
            "manifest_json": _pretty(manifest, secrets),
            "capability_lists": [
                (key, value if isinstance(value, list) else [value])
                for key, value in capabilities.items()
                if key != "services"
            ],
            "capability_services": capabilities.get("services") or [],
            "services": sorted(services.items()) if isinstance(services, dict) else [],
            **self._config_context(plugin, can_change, bound, secrets),
            **self._imports_context(plugin, secrets),
            **dependencies_context(plugin),
            **self._logs_context(plugin, secrets),
            "events": [
                {
                    "at": e.created_at,
                    "kind": e.kind,
                    "from": e.from_state,
                    "to": e.to_state,
                    "reason": _scrub(e.reason, secrets),
                    "actor": e.actor,
                }
                for e in events
            ],
            "events_url": reverse("admin:stonks_plugins_pluginevent_changelist")
            + f"?plugin__id__exact={plugin.pk}"
            if request.user.has_perm("stonks_plugins.view_pluginevent")
            else "",
            "checks": [
                {
                    "at": c.created_at,
                    "status": c.status,
                    "badge": health_badge(c.status),
                    "message": _scrub(c.message, secrets),
                    "ms": round(c.duration_ms, 2),
                    "actor": c.actor,
                }
                for c in checks
            ],
            "health_chart": health_chart(checks),
            "metrics_error": _scrub(snapshot.get("error", "")),
            "metrics_rows": [{"op": op, **s, "errors_all": _errors(s)} for op, s in operations],
            "metrics_total": stats.get("__total__"),
            "metrics_chart": metrics_chart(operations),
            "history_chart": history_chart(history),
            "history_minutes": HISTORY_MINUTES,
            "circuit": snapshot.get("circuit"),
            "metrics_pid": os.getpid(),
        }

    def _logs_context(self, plugin: Plugin, secrets: list[str]) -> dict[str, Any]:
        """The "Logs" section: the newest records the plugin's code logged (stored masked;
        scrubbed again like every text on the page)."""
        return {
            "logs": [
                {
                    "at": r.at,
                    "level": r.level_name,
                    "logger": r.logger,
                    "message": _scrub(r.message, secrets),
                    "exc_text": _scrub(r.exc_text, secrets),
                    "process": r.process,
                }
                for r in manager.logs(plugin.name)[:LOGS_SHOWN]
            ],
            "logs_shown": LOGS_SHOWN,
        }

    def _imports_context(self, plugin: Plugin, secrets: list[str]) -> dict[str, Any]:
        """The "Import" section: rows per file and outcome, and the reported rows; none for a
        plugin that keeps no report or cannot be read now (off, in error)."""
        if plugin.type != "broker":
            return {}
        try:
            report = manager.import_report(plugin.name)
        except ImportReportUnavailable:
            return {}
        except PluginError as exc:  # the plugin failed or hung while it was read
            return {"imports_error": _scrub(str(exc), secrets)}

        def count(value: int | None) -> int | str:
            return "?" if value is None else value

        return {
            "imports": report,
            "import_files": [
                {
                    "name": name,
                    "rows": count(c["rows"]),
                    "understood": count(c["understood"]),
                    "skipped": sum(c["skipped"].values()),
                    "reported": c["reported"],
                    "rules": sorted(c["skipped"].items()),
                }
                for name, c in report["files"].items()
            ],
            "import_totals": {k: count(v) for k, v in report["totals"].items()},
        }

    def _config_context(
        self, plugin: Plugin, can_change: bool, bound: ConfigForm | None, secrets: list[str]
    ) -> dict[str, Any]:
        try:
            schema = manager.config_schema(plugin.name)
            latest = manager.get_config(plugin.name)
            history = manager.config_history(plugin.name)
        except Exception as exc:  # a broken manifest or schema: say so, show the rest
            return {"config_error": _scrub(str(exc), secrets)}
        form = bound or ConfigForm(schema, latest.data, latest.version, read_only=not can_change)
        newest = history[0] if history else None
        return {
            "config_form": form,
            "config_latest": latest,
            "config_refused": newest if newest and newest.status == "failed" else None,
            "config_refused_message": _scrub(newest.message, secrets) if newest else "",
            "config_history": [
                {
                    "version": h.version,
                    "status": h.status,
                    "by": h.created_by,
                    "at": h.created_at,
                    "changed": ", ".join(h.changed),
                    "message": _scrub(h.message, secrets),
                }
                for h in history[:20]
            ],
            "config_submit": SUBMIT_FIELD,
        }


# -- the audit trail and the config versions: read-only views -------------------------------
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
        return _scrub(obj.reason)

    @admin.display(description=gettext_lazy("details"))
    def details_json(self, obj: PluginEvent) -> str:
        return format_html("<pre class='so-json'>{}</pre>", _pretty(obj.details))


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
        return _scrub(obj.message, secret_values(obj.plugin))

    @admin.display(description=gettext_lazy("data (secrets masked)"))
    def masked_data(self, obj: PluginConfig) -> str:
        try:
            shown = versions.view(obj.plugin, obj, versions.schema_of(obj.plugin)).data
        except Exception as exc:
            return gettext("cannot be shown: %(error)s") % {"error": _scrub(str(exc))}
        return format_html("<pre class='so-json'>{}</pre>", _pretty(shown))
