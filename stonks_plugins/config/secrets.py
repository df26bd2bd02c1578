"""Secrets at rest and in sight.

Secret fields are stored as ``{"$enc": "<Fernet token>"}`` and shown as ``MASK``. The key
comes from ``PLUGINS_SECRET_KEY`` (Fernet, urlsafe base64 of 32 bytes); older keys listed in
``PLUGINS_SECRET_KEY_FALLBACKS`` still decrypt, so a key can be rotated: put the new key
first, the old one in the fallbacks, run ``manage.py plugins config rotate-key``, then drop
the old key. With no key set (development), one is derived from ``SECRET_KEY``; the deploy
checks (``manage.py check --deploy``) refuse that, and the repository's placeholder keys.

Which fields are secret is the schema's to say (:func:`.schema.secret_paths`); paths may
hold :data:`.schema.ITEM` and :data:`.schema.ANY_KEY` steps, expanded here against the data.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .. import jsonpath
from ..conf import plugin_settings
from ..errors import StonksPluginsError
from ..redaction import MASK
from .schema import ANY_KEY, ITEM, Path_, json_path

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

ENC = "$enc"


class SecretUnreadable(StonksPluginsError):
    """A stored secret cannot be decrypted with the configured keys."""


def _keys() -> list[bytes]:
    # cryptography (~4 ms) is imported by the first secret handled, not at every start-up.
    from cryptography.fernet import Fernet

    primary = plugin_settings.SECRET_KEY or ""
    fallbacks = list(plugin_settings.SECRET_KEY_FALLBACKS or [])
    keys = [k for k in [primary, *fallbacks] if k]
    if not keys:
        keys = [derived_key()]
    out = []
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                "PLUGINS_SECRET_KEY (or a fallback) is not a valid Fernet key: 32 url-safe "
                "base64-encoded bytes; generate one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            ) from exc
        out.append(key.encode() if isinstance(key, str) else key)
    return out


def derived_key() -> str:
    """The key used while ``PLUGINS_SECRET_KEY`` is unset (development only): after setting
    a real one, list this in ``PLUGINS_SECRET_KEY_FALLBACKS`` and rotate, to keep what was
    stored with it."""
    digest = hashlib.sha256(("stonks-plugins-secrets:" + settings.SECRET_KEY).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def fernet() -> MultiFernet:
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(k) for k in _keys()])


Concrete = tuple[str | int, ...]
"""A path into one config: keys, and list indexes as ints."""


def expand(data: Any, path: Path_, at: Concrete = ()) -> Iterator[Concrete]:
    """The concrete paths in ``data`` that ``path`` (with :data:`ITEM` / :data:`ANY_KEY`
    steps) names and that exist."""
    if not path:
        yield at
        return
    if is_encrypted(data):
        return  # already a secret as a whole
    step, rest = path[0], path[1:]
    if step == ITEM and isinstance(data, list):
        for i, item in enumerate(data):
            yield from expand(item, rest, (*at, i))
    elif step == ANY_KEY and isinstance(data, dict):
        for key, item in data.items():
            yield from expand(item, rest, (*at, key))
    elif isinstance(data, dict) and step in data:
        yield from expand(data[step], rest, (*at, step))


def _concrete(data: Any, paths: Iterable[Path_]) -> list[Concrete]:
    return [c for path in paths for c in expand(data, path)]


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif value is not None and not isinstance(value, bool) and value != MASK:
        yield str(value)


def secret_values_in(data: Any, paths: Iterable[Path_]) -> set[str]:
    """The clear values at ``paths`` in ``data`` (every scalar of a secret subtree)."""
    return {
        text for c in _concrete(data, paths) for text in _scalars(jsonpath.get(data, c)) if text
    }


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


def is_encrypted(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {ENC}


def encrypt(data: dict[str, Any], paths: Iterable[Path_]) -> dict[str, Any]:
    out = _copy(data)
    f = fernet()
    for path in _concrete(out, paths):
        value = jsonpath.get(out, path)
        if value is None or is_encrypted(value):
            continue
        # JSON keeps the type: a numeric PIN comes back as a number.
        token = f.encrypt(json.dumps(value).encode()).decode()
        jsonpath.put(out, path, {ENC: token})
    return out


def decrypt(data: dict[str, Any], paths: Iterable[Path_]) -> dict[str, Any]:
    from cryptography.fernet import InvalidToken

    out = _copy(data)
    f = fernet()
    for path in _concrete(out, paths):
        value = jsonpath.get(out, path)
        if not is_encrypted(value):
            continue
        try:
            jsonpath.put(out, path, json.loads(f.decrypt(value[ENC].encode())))
        except InvalidToken:
            raise SecretUnreadable(
                f"the secret at {json_path(path)} cannot be decrypted with PLUGINS_SECRET_KEY "
                "or its fallbacks; restore the old key as a fallback, or set the secret again"
            ) from None
    return out


def decrypt_all(data: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """``data`` with every encrypted value decrypted, wherever it is, and the clear values
    of those secrets (to mask them in any text about this data). For a config whose schema
    may be gone: an upgrade that replaced the plugin's files in place replaced its schema
    file too, so the stored data says itself which of its fields were secret."""
    from cryptography.fernet import InvalidToken

    f = fernet()
    clear: set[str] = set()

    def walk(node: Any, at: Concrete) -> Any:
        if is_encrypted(node):
            try:
                value = json.loads(f.decrypt(node[ENC].encode()))
            except InvalidToken:
                raise SecretUnreadable(
                    f"the secret at {json_path(at)} cannot be decrypted with "
                    "PLUGINS_SECRET_KEY or its fallbacks; restore the old key as a fallback, "
                    "or set the secret again"
                ) from None
            clear.update(_scalars(value))
            return value
        if isinstance(node, dict):
            return {k: walk(v, (*at, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*at, i)) for i, v in enumerate(node)]
        return node

    out = walk(data, ())
    return out, {text for text in clear if text}


def rotate(data: dict[str, Any], paths: Iterable[Path_]) -> dict[str, Any]:
    """Re-encrypt every secret with the primary key."""
    out = _copy(data)
    f = fernet()
    for path in _concrete(out, paths):
        value = jsonpath.get(out, path)
        if is_encrypted(value):
            jsonpath.put(out, path, {ENC: f.rotate(value[ENC].encode()).decode()})
    return out


def mask(data: dict[str, Any], paths: Iterable[Path_]) -> dict[str, Any]:
    out = _copy(data)
    for path in _concrete(out, paths):
        if jsonpath.get(out, path) is not None:
            jsonpath.put(out, path, MASK)
    return out


def keep_masked(
    incoming: dict[str, Any], stored: dict[str, Any], paths: Iterable[Path_]
) -> dict[str, Any]:
    """A masked value sent back means "unchanged": keep the stored (encrypted) secret. In an
    array, the stored value is the one at the same position."""
    out = _copy(incoming)
    dropped: list[Concrete] = []
    for path in _concrete(out, paths):
        if jsonpath.get(out, path) != MASK:
            continue
        previous = jsonpath.get(stored, path)
        if previous is None:
            dropped.append(path)
        else:
            jsonpath.put(out, path, previous)
    # Nothing stored to keep: drop it, so 'required' reports it as missing; an array item
    # cannot be dropped without moving the others, so it becomes null, which validation
    # refuses for a secret (the mask itself must never be stored as the secret).
    for path in reversed(dropped):
        parent = jsonpath.get(out, path[:-1])
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif isinstance(parent, list) and isinstance(path[-1], int):
            parent[path[-1]] = None
    return out
