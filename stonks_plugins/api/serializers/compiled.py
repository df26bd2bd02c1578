"""DRF's ``Serializer.to_representation``, with each field's lookup worked out once per
serializer instead of once per row: the same declared fields give the same output, and
listing 1,000 plugins costs no more than a bare DRF list view (``benchmarks/bench_api.py``).

Worked out once per field: where its value comes from - an attribute or key, the whole
object (``source="*"``), or the field's own ``get_attribute`` (a dotted source, or a field
that overrides it; a :class:`Shaped` field, or one that only needs it for a missing value,
``own_lookup_when_missing``, is read directly) - and which values its ``to_representation``
returns unchanged (a ``CharField`` given a ``str``, an ``IntegerField`` an ``int``, a
``BooleanField`` a ``bool``, a ``ChoiceField`` of string choices a ``str``, or the type one
of our fields declares as its ``passes``), so that those skip the call. Anything unusual - a
missing key or attribute, a callable - goes through the field's own ``get_attribute``, with
DRF's rules (default, null, skipped). ``tests/stonks_plugins/api/test_serializers.py``
checks that the output is DRF's, byte for byte.

A serializer's fields are cheap copies of the declared ones (:func:`clone`) rather than DRF's
deep copies, which run every field's ``__init__`` again: most of the cost of a short list.
A declared field is a prototype, never used itself; a field keeps what it works out for one
response (the URL prefix, the language) on its copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from rest_framework import serializers
from rest_framework.fields import Field, SkipField
from rest_framework.relations import PKOnlyObject


class Shaped:
    """A field whose value, once looked up, is put in shape by :meth:`shape` (a JSON column
    that may hold anything): in DRF's path by its ``get_attribute``, in the compiled one
    after the compiled lookup."""

    def shape(self, value: Any) -> Any:
        raise NotImplementedError

    def get_attribute(self, instance: Any) -> Any:
        return self.shape(super().get_attribute(instance))  # type: ignore[misc]


class _NoType:
    """No value is of this type: the field's ``to_representation`` always runs."""


class Step(NamedTuple):
    name: str
    attr: str | None  # the attribute or key to read; None: see ``whole``
    whole: bool  # source "*": the object itself; else (attr None) the field's get_attribute
    field: Field
    unchanged: type  # values of this type are shown as they are
    show: Callable[[Any], Any]
    shape: Callable[[Any], Any] | None  # Shaped.shape, after the compiled lookup


def _unchanged(field: Field) -> type:
    declared = getattr(field, "passes", None)
    if declared is not None:
        return declared
    method = type(field).to_representation
    for base, kind in (
        (serializers.CharField, str),
        (serializers.IntegerField, int),
        (serializers.BooleanField, bool),
    ):
        if method is base.to_representation:
            return kind
    if method is serializers.ChoiceField.to_representation:
        keys = field.choice_strings_to_values.values()
        if all(type(key) is str for key in keys):
            return str
    return _NoType


def compile_fields(fields: Iterable[Field]) -> list[Step]:
    steps = []
    for field in fields:
        shaped = isinstance(field, Shaped)
        plain = shaped or getattr(field, "own_lookup_when_missing", False)
        own = type(field).get_attribute is not Field.get_attribute and not plain
        attrs = field.source_attrs
        simple = not own and len(attrs) == 1
        steps.append(
            Step(
                field.field_name,
                attrs[0] if simple else None,
                not own and not attrs,
                field,
                _unchanged(field),
                field.to_representation,
                field.shape if shaped and (simple or not attrs) else None,
            )
        )
    return steps


_MISSING = object()


_CACHES = ("fields", "_steps", "_data")
"""What a serializer works out on first use (bound fields, compiled steps, output): never
shared by a copy."""


def clone(field: Field) -> Field:
    """A fresh copy of a declared field, for one serializer instance: its own attributes (and
    its own copy of its ``child``), no cache of the prototype's. What DRF's deep copy gives a
    response shape, without running the field's ``__init__`` again."""
    twin = object.__new__(type(field))  # copy.copy, minus its generic protocol
    twin.__dict__.update(field.__dict__)
    for cached in _CACHES:
        twin.__dict__.pop(cached, None)
    if isinstance(twin, serializers.BaseSerializer):
        twin._context = {}  # only a root's is read; never the prototype's dict
    child = field.__dict__.get("child")
    if isinstance(child, Field):
        twin.child = clone(child)
        twin.child.parent = twin
    return twin


class CompiledSerializer(serializers.Serializer):
    # (No docstring: the schema would show it as every subclass's description.)

    def get_fields(self) -> dict[str, Field]:
        return {name: clone(field) for name, field in self._declared_fields.items()}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        steps: list[Step] | None = self.__dict__.get("_steps")
        if steps is None:
            steps = self.__dict__["_steps"] = compile_fields(self._readable_fields)
        is_dict = type(instance) is dict
        out: dict[str, Any] = {}
        for name, attr, whole, field, unchanged, show, shape in steps:
            value: Any = _MISSING
            if attr is not None:
                if is_dict:
                    value = instance.get(attr, _MISSING)
                else:
                    value = getattr(instance, attr, _MISSING)
                if type(value) is unchanged and shape is None:  # the common case
                    out[name] = value
                    continue
                if callable(value):
                    value = _MISSING
            elif whole:
                value = instance
            if value is _MISSING:  # the field's own lookup, with DRF's rules
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
                if isinstance(value, PKOnlyObject) and value.pk is None:
                    value = None
            elif shape is not None:
                value = shape(value)
            if value is None:
                out[name] = None
            elif type(value) is unchanged:
                out[name] = value
            else:
                out[name] = show(value)
        return out
