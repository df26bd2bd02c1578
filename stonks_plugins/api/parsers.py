"""The API's only request parser: JSON, held to what every later step can store and show.

A body the API accepts goes on to validation, the database (PostgreSQL's JSONB refuses
``\\u0000``; SQLite and the JSON renderer refuse lone surrogates), the renderer (no
``Infinity``) and code that walks it recursively. So the parser refuses, as a 400
``parse_error`` naming where: a number that is not finite (``1e400``, ``NaN``), a string or
key holding ``\\u0000`` or a lone surrogate, nesting deeper than :data:`MAX_DEPTH`, bytes
that are not UTF-8. A body larger than Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413
``payload_too_large`` and is never read whole.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext
from rest_framework import exceptions, parsers

from .errors import PayloadTooLarge, json_path

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects in a body: a config is a few levels deep, and
validation and storage walk the data recursively."""


def body_limit() -> int | None:
    """Largest body the API reads, in bytes (``DATA_UPLOAD_MAX_MEMORY_SIZE``; None: none)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return int(limit) if limit is not None else None


def check_declared_size(meta: Mapping[str, Any]) -> None:
    """413 when the request's ``Content-Length`` is over the limit, before reading a byte."""
    limit = body_limit()
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return  # not a number: Django's request reads nothing from it
    if limit is not None and declared > limit:
        raise PayloadTooLarge(declared, limit)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(
            gettext("the number %(number)s is too large for a float (at most ~1.8e308)")
            % {"number": text[:40]}
        )
    return value


def _no_constant(text: str) -> None:
    raise ValueError(gettext("%(text)s is not a JSON number") % {"text": text})


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return gettext("holds a NUL character (\\u0000), which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return gettext("holds a lone surrogate (%(char)s), which is not Unicode") % {
            "char": f"\\u{ord(text[exc.start]):04x}"
        }
    return None


def check_tree(data: Any) -> None:
    """Raise ParseError at the first string or key that cannot be stored, or where the
    nesting goes deeper than :data:`MAX_DEPTH`. Iterative: the depth is what is checked."""
    stack: list[tuple[Any, str, int]] = [(data, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                raise exceptions.ParseError(
                    gettext("invalid JSON body: the string at %(path)s %(problem)s")
                    % {"path": path, "problem": problem}
                )
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise exceptions.ParseError(
                    gettext("invalid JSON body: nested deeper than %(depth)d levels (at %(path)s…)")
                    % {"depth": MAX_DEPTH, "path": path[:80]}
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                child = json_path(path, key)
                if isinstance(key, str):
                    problem = _text_problem(key)
                    if problem:
                        raise exceptions.ParseError(
                            gettext("invalid JSON body: a key in %(path)s %(problem)s")
                            % {"path": path, "problem": problem}
                        )
                stack.append((item, child, depth + 1))


def parse_json(raw: bytes, encoding: str = "utf-8") -> Any:
    """Decode a JSON body, or raise ParseError saying what is wrong (and where)."""
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise exceptions.ParseError(
            gettext("invalid JSON body: not %(encoding)s text (%(error)s)")
            % {"encoding": encoding, "error": exc}
        ) from None
    try:
        data = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise exceptions.ParseError(
            gettext("invalid JSON body: nested deeper than %(depth)d levels") % {"depth": MAX_DEPTH}
        ) from None
    except ValueError as exc:  # JSONDecodeError, non-finite numbers, over-long integers
        raise exceptions.ParseError(
            gettext("invalid JSON body: %(error)s") % {"error": exc}
        ) from None
    check_tree(data)
    return data


class StrictJSONParser(parsers.JSONParser):
    """DRF's JSON parser with the limits above."""

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        context = parser_context or {}
        request = context.get("request")
        if request is not None:
            check_declared_size(request.META)
        limit = body_limit()
        # Read one byte past the limit: a body sent without Content-Length (chunked) that
        # is too large is caught without reading it all.
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(None, limit)
        return parse_json(raw, context.get("encoding", settings.DEFAULT_CHARSET))
