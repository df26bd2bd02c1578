"""Who may do what: reading needs ``stonks_plugins.view_plugin``, changing needs
``stonks_plugins.change_plugin``.

As in the Django admin, the change permission implies the view permission. What counts as a
change is explicit: any unsafe method (POST, PUT, PATCH, DELETE) and any action a view lists
in ``change_actions`` — so a new endpoint is read-only only if it is both a safe method and
not listed. Anonymous requests get 401 (DRF answers 401 rather than 403 because the first
authenticator, token authentication, names a ``WWW-Authenticate`` scheme).
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

VIEW_PERMISSION = "stonks_plugins.view_plugin"
CHANGE_PERMISSION = "stonks_plugins.change_plugin"


def needs_change(request: Request, view: Any) -> bool:
    action = getattr(view, "action", None)
    return request.method not in SAFE_METHODS or action in getattr(view, "change_actions", ())


class PluginPermission(BasePermission):
    message = "you do not have permission to do this"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        if request.method not in getattr(view, "allowed_methods", [request.method]):
            return True  # the view answers 405 Method Not Allowed, whoever asks
        if needs_change(request, view):
            self.message = f"changing plugins needs the '{CHANGE_PERMISSION}' permission"
            return bool(user.has_perm(CHANGE_PERMISSION))
        self.message = f"reading plugins needs the '{VIEW_PERMISSION}' permission"
        return bool(user.has_perm(VIEW_PERMISSION) or user.has_perm(CHANGE_PERMISSION))
