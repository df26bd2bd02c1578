"""Does a value match a type hint? The kit's check that service methods return the data
classes their interface declares, field by field.

The interfaces in :mod:`stonks_plugins.sdk` are the contract: ``get_portfolio`` is annotated
``-> list[PortfolioEntry]``, so the kit reads the annotation instead of keeping its own table,
and a new interface method is checked the day it is added. Data classes are not validated at
run time by Python, so a parser that leaves ``shares`` as the string ``"10"`` builds a
``PortfolioEntry`` happily and breaks a page later; the field-level check catches that here.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, Union

_NONE = type(None)


@cache
def interface_methods(interface: type) -> tuple[tuple[str, Any], ...]:
    """``(name, return hint)`` of each abstract method of ``interface``, in declaration
    order (base classes first)."""
    abstract = set(getattr(interface, "__abstractmethods__", ()))
    seen: list[str] = []
    for klass in reversed(interface.__mro__):
        for name in vars(klass):
            if name in abstract and name not in seen:
                seen.append(name)
    out = []
    for name in seen:
        func = getattr(interface, name)
        try:
            hint = typing.get_type_hints(func).get("return", Any)
        except Exception:  # an annotation that does not resolve: check nothing
            hint = Any
        out.append((name, hint))
    return tuple(out)


def returns_nothing(hint: Any) -> bool:
    """A method annotated ``-> None`` acts (``update_all``): the kit does not call it."""
    return hint is None or hint is _NONE


def hint_name(hint: Any) -> str:
    """``list[PortfolioEntry]``, without module paths."""
    if hint is None or hint is _NONE:
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return _MODULE_PATH.sub("", str(hint))


_MODULE_PATH = re.compile(r"\b(?:[a-z_][a-z0-9_]*\.)+(?=[A-Za-z_])")


def describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def type_problem(value: Any, hint: Any, where: str) -> str | None:
    """None when ``value`` matches ``hint``; else the first mismatch, e.g.
    ``get_portfolio()[0].shares is str '10', expected float``."""
    if hint is Any or isinstance(hint, typing.TypeVar):
        return None
    if hint is None or hint is _NONE:
        return None if value is None else f"{where} is {describe(value)}, expected None"
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        if any(type_problem(value, arg, where) is None for arg in args):
            return None
        return f"{where} is {describe(value)}, expected {hint_name(hint)}"
    if origin is not None:
        return _generic_problem(value, origin, args, hint, where)
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"{where} is {describe(value)}, expected float"
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"{where} is {describe(value)}, expected int"
    if isinstance(hint, type):
        if not isinstance(value, hint):
            return f"{where} is {describe(value)}, expected {hint.__name__}"
        if dataclasses.is_dataclass(hint):
            return _fields_problem(value, hint, where)
    return None


def _generic_problem(
    value: Any, origin: Any, args: tuple[Any, ...], hint: Any, where: str
) -> str | None:
    if isinstance(origin, type) and not isinstance(value, origin):
        return f"{where} is {describe(value)}, expected {hint_name(hint)}"
    check: Callable[[Any, Any, str], str | None] = type_problem
    if origin in (list, set, frozenset) and args:
        for i, item in enumerate(value):
            problem = check(item, args[0], f"{where}[{i}]")
            if problem:
                return problem
    elif origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            pairs = [(item, args[0]) for item in value]
        elif len(args) != len(value):
            return f"{where} has {len(value)} items, expected {len(args)} ({hint_name(hint)})"
        else:
            pairs = list(zip(value, args, strict=True))
        for i, (item, arg) in enumerate(pairs):
            problem = check(item, arg, f"{where}[{i}]")
            if problem:
                return problem
    elif origin is dict and len(args) == 2:
        for key, item in value.items():
            problem = check(key, args[0], f"{where} key {key!r}") or check(
                item, args[1], f"{where}[{key!r}]"
            )
            if problem:
                return problem
    return None


@cache
def _field_hints(cls: type) -> tuple[tuple[str, Any], ...]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        return ()
    return tuple((f.name, hints.get(f.name, Any)) for f in dataclasses.fields(cls))


def _fields_problem(value: Any, cls: type, where: str) -> str | None:
    for name, hint in _field_hints(cls):
        problem = type_problem(getattr(value, name, None), hint, f"{where}.{name}")
        if problem:
            return problem
    return None
