"""The console's read-only records: the audit trail and the saved config versions are
written by the engine (every action is an event, every save a version), never from a form,
so the admin only shows them."""

from __future__ import annotations

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Viewable with the view permission; nobody adds, changes or deletes a row here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
