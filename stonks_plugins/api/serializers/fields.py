"""The fields the response shapes are made of, beyond DRF's own: each one produces its part of
the output from the object served, so that the declared fields are both the schema and what
is served. Also the strict input fields of the request shapes."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ...redaction import redact, scrub_text
from .compiled import Shaped

# -- output -------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.OBJECT)
class RedactedJSONField(serializers.JSONField):
    """Free-form JSON with secret-looking keys masked and secrets scrubbed from text."""

    def to_representation(self, value: Any) -> Any:
        return redact(dict(value) if isinstance(value, Mapping) else {})


class RedactedCharField(serializers.CharField):
    def to_representation(self, value: Any) -> str:
        return scrub_text(str(value))


class StoredObjectField(Shaped, serializers.DictField):
    """A JSON object column as stored, or one ``member`` of it that is an object; anything
    else (an old row, a hand edit) reads as ``{}``, never as null."""

    passes = dict

    def __init__(self, member: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.member = member

    def shape(self, value: Any) -> Any:
        if self.member is not None:
            value = value.get(self.member) if isinstance(value, dict) else None
        return value if isinstance(value, dict) else {}

    def to_representation(self, value: Any) -> Any:
        return value  # JSON as stored: nothing to convert


class StoredListField(Shaped, serializers.ListField):
    """A JSON array column, each item shown by ``child``; anything else reads as ``[]``."""

    def shape(self, value: Any) -> Any:
        return value if isinstance(value, list) else []


class RedactedObjectListField(StoredListField):
    """A JSON array column of objects, each redacted (see :class:`RedactedJSONField`); an
    item that is not an object is left out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=RedactedJSONField(), **kwargs)

    def to_representation(self, data: Any) -> list[Any]:
        return [redact(item) for item in data if isinstance(item, dict)]


class FlagField(serializers.BooleanField):
    """A flag of a stored JSON object: absent reads as false, any other value as its truth."""

    passes = bool  # shown as they are (see ``compiled``)
    own_lookup_when_missing = True

    def get_attribute(self, instance: Any) -> Any:
        try:
            return super().get_attribute(instance)
        except KeyError:
            return False

    def to_representation(self, value: Any) -> bool:
        return bool(value)


class EqualsField(serializers.BooleanField):
    """Whether the source equals ``value`` (``requires == "restart"``)."""

    def __init__(self, value: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value

    def to_representation(self, value: Any) -> bool:
        return bool(value == self.value)


class NumberField(serializers.FloatField):
    """A number as the engine counted it: an integer stays one (``5``, not ``5.0``)."""

    passes = float

    def to_representation(self, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        return float(value)


class RoundedFloatField(serializers.FloatField):
    def __init__(self, digits: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.digits = digits

    def to_representation(self, value: Any) -> float:
        return round(float(value), self.digits)


class ProcessIdField(serializers.IntegerField):
    """The id of the process answering (its counters are its own)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, value: Any) -> int:
        return os.getpid()


# -- input --------------------------------------------------------------------------------------


class StrictBooleanField(serializers.BooleanField):
    """``true``/``false`` only - a JSON boolean in a body, that word in a query: DRF's own
    takes ``1``, ``"yes"``, ``"on"``..., which the schema's boolean does not."""

    def to_internal_value(self, data: Any) -> bool:
        if type(data) is bool:
            return data
        if data in ("true", "false"):
            return bool(data == "true")
        raise serializers.ValidationError(self.error_messages["invalid"], code="invalid")


class StrictIntegerField(serializers.IntegerField):
    """Digits only: DRF's own accepts ``"2.0"`` as 2, which the schema's integer does not."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and not re.fullmatch(r"-?[0-9]+", data):
            self.fail("invalid")
        return int(super().to_internal_value(data))
