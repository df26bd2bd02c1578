"""The one error shape, ``{"error": {"code", "message", "details"}}`` (see ``api.errors``)."""

from __future__ import annotations

from rest_framework import serializers

from .base import ERROR_LOCATIONS, REASON_CODES, ReadOnlySerializer


class ErrorDetailItemSerializer(ReadOnlySerializer):
    path = serializers.CharField(
        help_text="JSON path of the bad field in the body ($.a.b[0]) or the query parameter."
    )
    message = serializers.CharField()
    code = serializers.CharField(help_text="DRF's code for this problem (required, invalid...)")
    location = serializers.ChoiceField(choices=ERROR_LOCATIONS)


class ErrorBodySerializer(ReadOnlySerializer):
    code = serializers.CharField(
        help_text="Stable machine-readable code: not_authenticated, authentication_failed, "
        "permission_denied, not_found, method_not_allowed, validation_error, conflict, "
        "precondition_failed, server_error, or a plugin reason code ("
        + ", ".join(REASON_CODES)
        + ")."
    )
    message = serializers.CharField(help_text="What is wrong, for a person.")
    details = ErrorDetailItemSerializer(
        many=True, help_text="Every problem of a validation error; empty otherwise."
    )
    dependents = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="With code has_dependents (a disable): the enabled plugins that need the "
        "plugin, directly or through others.",
    )


class ErrorSerializer(ReadOnlySerializer):
    error = ErrorBodySerializer()
