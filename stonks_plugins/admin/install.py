"""The console's install, uninstall and purge: a wheel upload page beside the plugin list, and
two list actions with a confirmation page. A thin layer over the manager (see
:mod:`stonks_plugins.install`), mixed into ``PluginAdmin``.

All three need ``stonks_plugins.install_plugin`` (and, being changes, a logged-in staff user
who may change plugins for the list actions); installing and uninstalling also need
``PLUGINS_INSTALL_ENABLED``, which the upload page states when it is off. pip's output is
shown when pip fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext, gettext_lazy

from ..conf import plugin_settings
from ..errors import PluginNotFound
from ..install import MAX_WHEEL_BYTES, InstallError, InstallResult
from ..manager import manager
from ..models import Plugin
from ..redaction import scrub_text
from .labels import state_label

INSTALL_PERMISSION = "install_plugin"

_CONFIRM_WORDS = {
    "Uninstall": {
        "title": gettext_lazy("Uninstall plugins?"),
        "button": gettext_lazy("Uninstall"),
        "failed": gettext_lazy("Could not uninstall %(name)s: %(error)s"),
    },
    "Purge": {
        "title": gettext_lazy("Purge plugins?"),
        "button": gettext_lazy("Purge"),
        "failed": gettext_lazy("Could not purge %(name)s: %(error)s"),
    },
}


def result_messages(result: InstallResult) -> list[tuple[int, str]]:
    """One message per distribution installed and per plugin it provides."""
    out: list[tuple[int, str]] = []
    for dist in result.distributions:
        values = {"name": dist.name, "version": dist.version, "previous": dist.previous}
        if dist.previous and dist.previous != dist.version:
            text = gettext("Installed %(name)s %(version)s (was %(previous)s)") % values
        else:
            text = gettext("Installed %(name)s %(version)s") % values
        out.append((messages.SUCCESS, text))
    if not result.distributions:
        text = gettext("%(target)s: already installed; synced") % {"target": result.target}
        out.append((messages.INFO, text))
    for p in result.plugins:
        state = state_label(p["state"])
        if p["error"]:
            text = f"{p['name']}: {state} — {p['error']['code']}: {p['error']['message']}"
            out.append((messages.ERROR, text))
        else:
            out.append((messages.SUCCESS, f"{p['name']}: {state}"))
    return out


def _too_large(request: HttpRequest) -> bool:
    """The upload is over the wheel limit: refused before Django reads it to a file."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return declared > MAX_WHEEL_BYTES + 64 * 1024  # room for the form around the file


class InstallAdminMixin(admin.ModelAdmin):
    """``install/`` (the upload page) and the ``uninstall_plugins`` and ``purge_plugins``
    actions (list them in ``actions``)."""

    def has_install_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(f"{self.opts.app_label}.{INSTALL_PERMISSION}"))

    def get_urls(self) -> list[Any]:
        info = (self.opts.app_label, self.opts.model_name)
        view = self.admin_site.admin_view(self.install_view)
        return [path("install/", view, name="{}_{}_install".format(*info)), *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {
            **(extra_context or {}),
            "can_install": self.has_install_permission(request),
            "install_url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_install"),
        }
        return super().changelist_view(request, extra_context=context)

    # -- the upload page ------------------------------------------------------------------------
    def install_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_install_permission(request):
            raise PermissionDenied
        changelist = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        output = ""
        if request.method == "POST":
            upload = None if _too_large(request) else request.FILES.get("wheel")
            if upload is None:
                text = gettext("Choose a wheel (.whl) file of at most %(mb)d MB.")
                self.message_user(request, text % {"mb": MAX_WHEEL_BYTES // 2**20}, messages.ERROR)
            else:
                name = str(upload.name or "")
                try:
                    result = manager.install_upload(
                        name,
                        upload.chunks(),
                        upload.size,
                        actor=request.user.get_username(),
                        upgrade=bool(request.POST.get("upgrade")),
                    )
                except InstallError as exc:
                    text = gettext("Could not install %(name)s: %(error)s")
                    self.message_user(
                        request,
                        scrub_text(text % {"name": name, "error": exc.message}),
                        messages.ERROR,
                    )
                    output = exc.output
                else:
                    for level, text in result_messages(result):
                        self.message_user(request, scrub_text(text), level)
                    return HttpResponseRedirect(changelist)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Install a plugin"),
            "opts": self.opts,
            "media": self.media,
            "changelist_url": changelist,
            "enabled": bool(plugin_settings.INSTALL_ENABLED),
            "max_mb": MAX_WHEEL_BYTES // (1024 * 1024),
            "output": output,
        }
        return TemplateResponse(request, "admin/stonks_plugins/plugin/install.html", context)

    # -- list actions -----------------------------------------------------------------------------
    @admin.action(
        description=gettext_lazy("Uninstall selected plugins (pip uninstall their package)"),
        permissions=["install"],
    )
    def uninstall_plugins(
        self, request: HttpRequest, queryset: QuerySet[Plugin]
    ) -> HttpResponse | None:
        def uninstall(name: str, actor: str) -> str:
            distribution = manager.uninstall(name, actor).distribution
            return gettext("Uninstalled %(distribution)s") % {"distribution": distribution}

        return self._confirmed(
            request,
            queryset,
            "uninstall_plugins",
            "Uninstall",
            gettext(
                "pip uninstalls the package that provides each plugin (and so every plugin that "
                "package provides). Each plugin is then marked missing; its config is kept."
            ),
            uninstall,
        )

    @admin.action(
        description=gettext_lazy("Purge selected plugins that are gone (delete their rows)"),
        permissions=["install"],
    )
    def purge_plugins(
        self, request: HttpRequest, queryset: QuerySet[Plugin]
    ) -> HttpResponse | None:
        keep = request.POST.get("keep_config") == "on"

        def purge(name: str, actor: str) -> str:
            result = manager.purge(name, actor, keep_config=keep)
            if result.config_kept:
                return gettext("Purged %(name)s: row and config kept") % {"name": name}
            return gettext("Purged %(name)s: row and config deleted") % {"name": name}

        return self._confirmed(
            request,
            queryset,
            "purge_plugins",
            "Purge",
            gettext(
                "Deletes what the database holds of each plugin that is gone (missing) or never "
                "ran: its events, health checks, metrics and, unless kept, its row and config. A "
                "plugin that is installed and has run is refused: uninstall it first."
            ),
            purge,
            keep_config_choice=True,
        )

    def _confirmed(
        self,
        request: HttpRequest,
        queryset: QuerySet[Plugin],
        action: str,
        verb: str,
        explanation: str,
        run: Callable[[str, str], str],
        keep_config_choice: bool = False,
    ) -> HttpResponse | None:
        """The confirmation page first; once confirmed, one message per plugin. ``verb``:
        ``Uninstall`` or ``Purge`` (shown in the active language)."""
        names = list(queryset.values_list("name", flat=True))
        words = _CONFIRM_WORDS[verb]
        if request.POST.get("post") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": str(words["title"]),
                "opts": self.opts,
                "media": self.media,
                "names": names,
                "pks": [str(pk) for pk in queryset.values_list("pk", flat=True)],
                "action": action,
                "verb": str(words["button"]),
                "explanation": explanation,
                "keep_config_choice": keep_config_choice,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/stonks_plugins/plugin/confirm_install_action.html", context
            )
        actor = request.user.get_username()
        for name in names:
            try:
                level, text = messages.SUCCESS, run(name, actor)
            except (InstallError, PluginNotFound) as exc:
                level, text = messages.ERROR, str(words["failed"]) % {"name": name, "error": exc}
            self.message_user(request, scrub_text(text), level)
        return None
