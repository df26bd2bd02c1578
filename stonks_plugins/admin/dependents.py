"""The console's view of plugin dependencies: the "Dependencies" section of a plugin page, and
the confirmation page a disable shows when enabled plugins need what it switches off (the
admin's intermediate-page pattern). A thin layer over :mod:`stonks_plugins.dependents`, which
finds the dependents for every surface; ``PluginAdmin`` calls these two functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.admin import ModelAdmin, helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext

from .. import dependents
from ..models import Plugin
from .labels import state_label

CONFIRMED = "post"
"""The field the confirmation form posts (``yes``), as Django's own delete confirmation."""


def dependencies_context(plugin: Plugin) -> dict[str, Any]:
    """What the plugin needs and what needs it, with each one's state."""

    needs = dependents.depends_on(plugin)
    needed_by = dependents.dependents(plugin.name)
    return {
        "depends_on": [_shown(link.as_dict()) for link in needs],
        "needed_by": [_shown(link.as_dict()) for link in needed_by],
    }


def _shown(link: dict[str, Any]) -> dict[str, Any]:
    """A link with its state's name in the active language beside the state's code."""
    return {**link, "state_label": state_label(link["state"]) if link["state"] else ""}


def disable_confirmation(
    admin: ModelAdmin[Plugin],
    request: HttpRequest,
    names: Iterable[str],
    *,
    action: str = "",
    pks: Iterable[Any] = (),
    back_url: str,
) -> TemplateResponse | None:
    """The page asking to confirm a disable of ``names`` that would fail enabled plugins
    not being disabled with them; None when there are none, or once confirmed. ``action``
    and ``pks``: the list action to post back to (empty: the page posts to its own URL)."""
    if request.POST.get(CONFIRMED) == "yes":
        return None
    chosen = list(names)
    blocked = []
    for name in chosen:
        needed_by = [n for n in dependents.enabled_dependents(name) if n not in chosen]
        if needed_by:
            blocked.append({"name": name, "dependents": needed_by})
    if not blocked:
        return None
    context = {
        **admin.admin_site.each_context(request),
        "title": gettext("Disable plugins that others need?"),
        "opts": admin.opts,
        "media": admin.media,
        "blocked": blocked,
        "names": chosen,
        "action": action,
        "pks": [str(pk) for pk in pks],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "confirmed_field": CONFIRMED,
        "back_url": back_url,
    }
    return TemplateResponse(request, "admin/stonks_plugins/plugin/confirm_disable.html", context)
