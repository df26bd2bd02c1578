"""JSON paths, in one place: spelling one (``$.accounts[0].password``) and reading, writing or
removing the value it names in parsed JSON.

Errors name the JSON path of what is wrong (manifest and config validation, secrets, the API,
the console's config form); the paths the project builds itself are spelled here: a key after
a dot, a list index in brackets, ``[*]`` for every item of a list and ``.*`` for every value
of a map. The API quotes keys that are not identifiers (``$["odd key"]``), since a request
body's keys can be anything. (jsonschema spells the paths of its own errors, ``$['a.py']``
for a key that is not a name; the paths built from them here add to them.)

A path given as steps is a sequence of object keys (``str``) and list indexes (``int``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

Step = str | int
ROOT = "$"
ALL_ITEMS = "[*]"
"""A step naming every item of a list (config schemas: secrets inside arrays)."""
ALL_KEYS = "{*}"
"""A step naming every value of a map (``additionalProperties``)."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING = object()


def child(path: str, step: Step, *, quote: bool = False) -> str:
    """The path of ``step`` under ``path``; with ``quote``, a key that is not an identifier
    is written ``["key"]`` (JSON string escapes for ``"`` and ``\\``)."""
    if isinstance(step, int):
        return f"{path}[{step}]"
    if quote and not _IDENTIFIER.match(step):
        escaped = step.replace("\\", "\\\\").replace('"', '\\"')
        return f'{path}["{escaped}"]'
    if step == ALL_ITEMS:
        return f"{path}[*]"
    if step == ALL_KEYS:
        return f"{path}.*"
    return f"{path}.{step}"


def join(steps: Iterable[Step], root: str = ROOT, *, quote: bool = False) -> str:
    """The path of ``steps`` from ``root``: ``join(("a", 0, "b"))`` is ``$.a[0].b``."""
    path = root
    for step in steps:
        path = child(path, step, quote=quote)
    return path


def _find(data: Any, steps: Iterable[Step]) -> Any:
    for step in steps:
        if isinstance(step, int):
            if not isinstance(data, list) or not -len(data) <= step < len(data):
                return _MISSING
        elif not isinstance(data, dict) or step not in data:
            return _MISSING
        data = data[step]
    return data


def get(data: Any, steps: Iterable[Step]) -> Any:
    """The value at ``steps`` in ``data`` (``data`` itself for no steps), or None where
    there is none."""
    found = _find(data, steps)
    return None if found is _MISSING else found


def has(data: Any, steps: Iterable[Step]) -> bool:
    """Whether ``data`` holds a value (None included) at ``steps``."""
    return _find(data, steps) is not _MISSING


def put(data: Any, steps: Sequence[Step], value: Any) -> None:
    """Set the value at ``steps``; an object missing on the way to a key (or a value that is
    not an object there) is replaced by a new, empty one."""
    *parents, last = steps
    for step, following in zip(parents, steps[1:], strict=True):
        found = get(data, (step,))
        if isinstance(following, str) and not isinstance(found, dict):
            found = data[step] = {}
        data = found
    data[last] = value


def drop(data: Any, steps: Sequence[Step]) -> None:
    """Remove the key at ``steps`` if it is there."""
    parent = get(data, steps[:-1])
    if isinstance(parent, dict):
        parent.pop(steps[-1], None)
