"""The request shapes: the options of a disable, a new instance's label, the health history's
query. Each is closed where the schema says so: a key it does not read is refused, not
ignored."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from ...instance_names import LABEL_PATTERN
from .fields import StrictBooleanField, StrictIntegerField


class _InputSerializer(serializers.Serializer):
    # Reads input only: nothing is created or updated through it. (No docstring: the schema
    # would show it as every subclass's description.)

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


class DisableSerializer(_InputSerializer):
    """Options of a disable, in the query (``?force=true``) or the body; a body is closed:
    a key other than ``force`` is refused, not ignored."""

    force = StrictBooleanField(
        required=False,
        default=False,
        help_text="Disable it even though enabled plugins need it (they go to error, "
        "missing_dependency). Without it such a disable changes nothing and answers 409.",
    )

    def __init__(self, *args: Any, closed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = closed

    def to_internal_value(self, data: Any) -> Any:
        if self.closed and isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in self.fields)
            if unknown:
                message = gettext("unknown key; expected: force")
                raise serializers.ValidationError({k: [message] for k in unknown})
        return super().to_internal_value(data)


class _LabelField(serializers.RegexField):
    """A label is a JSON string: DRF's text fields would take the number 5 as "5"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class NewInstanceSerializer(_InputSerializer):
    """A new instance of a plugin: its label (the instance is then NAME:LABEL)."""

    label = _LabelField(
        rf"^{LABEL_PATTERN}$",
        max_length=40,
        help_text="1 to 40 lower-case letters, digits, '-' or '_', starting with a letter or "
        "digit; the instance is named NAME:LABEL.",
        error_messages={
            "invalid": gettext_lazy(
                "not a valid instance label: use 1 to 40 lower-case letters, digits, "
                "'-' or '_', starting with a letter or digit (e.g. 'partner')"
            )
        },
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        data = self.initial_data if isinstance(self.initial_data, dict) else {}
        unknown = sorted(str(k) for k in data if k not in self.fields)
        if unknown:
            message = gettext("unknown field: only 'label' is read")
            raise serializers.ValidationError({key: [message] for key in unknown})
        return attrs


class NewInstanceSchema(OpenApiSerializerExtension):
    """The body of ``POST plugins/{name}/instances/`` is closed (only ``label``) and
    required, as the schema says: a client learns that other keys are not read."""

    target_class = NewInstanceSerializer

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        return schema


class HealthQuerySerializer(serializers.Serializer):
    limit = StrictIntegerField(
        min_value=1, max_value=1000, default=50, help_text="How many past results to return."
    )
