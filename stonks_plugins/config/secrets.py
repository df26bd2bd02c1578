"""Secrets at rest and in sight.

Secret fields are stored as ``{"$enc": "<Fernet token>"}`` and shown as ``MASK``. The key
comes from ``PLUGINS_SECRET_KEY`` (Fernet, urlsafe base64 of 32 bytes); older keys listed in
``PLUGINS_SECRET_KEY_FALLBACKS`` still decrypt, so a key can be rotated: put the new key
first, the old one in the fallbacks, run ``manage.py plugins config rotate-key``, then drop
the old key. With no key set (development), one is derived from ``SECRET_KEY``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..conf import plugin_settings
from ..redaction import MASK
from .schema import Path_

ENC = "$enc"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the configured keys."""


def _keys() -> list[bytes]:
    primary = plugin_settings.SECRET_KEY or ""
    fallbacks = list(plugin_settings.SECRET_KEY_FALLBACKS or [])
    keys = [k for k in [primary, *fallbacks] if k]
    if not keys:
        digest = hashlib.sha256(("stonks-plugins-secrets:" + settings.SECRET_KEY).encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
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


def fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in _keys()])


def _get(data: Any, path: Path_) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _set(data: dict[str, Any], path: Path_, value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


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
    for path in paths:
        value = _get(out, path)
        if value is None or is_encrypted(value):
            continue
        # JSON keeps the type: a numeric PIN comes back as a number.
        token = f.encrypt(json.dumps(value).encode()).decode()
        _set(out, path, {ENC: token})
    return out


def decrypt(data: dict[str, Any], paths: Iterable[Path_]) -> dict[str, Any]:
    out = _copy(data)
    f = fernet()
    for path in paths:
        value = _get(out, path)
        if not is_encrypted(value):
            continue
        try:
            _set(out, path, json.loads(f.decrypt(value[ENC].encode())))
        except InvalidToken:
            raise SecretUnreadable(
                f"the secret at $.{'.'.join(path)} cannot be decrypted with PLUGINS_SECRET_KEY "
                "or its fallbacks; restore the old key as a fallback, or set the secret again"
            ) from None
    return out


def rotate(data: dict[str, Any], paths: Iterable[Path_]) -> dict[str, Any]:
    """Re-encrypt every secret with the primary key."""
    out = _copy(data)
    f = fernet()
    for path in paths:
        value = _get(out, path)
        if is_encrypted(value):
            _set(out, path, {ENC: f.rotate(value[ENC].encode()).decode()})
    return out


def mask(data: dict[str, Any], paths: Iterable[Path_]) -> dict[str, Any]:
    out = _copy(data)
    for path in paths:
        if _get(out, path) is not None:
            _set(out, path, MASK)
    return out


def keep_masked(
    incoming: dict[str, Any], stored: dict[str, Any], paths: Iterable[Path_]
) -> dict[str, Any]:
    """A masked value sent back means "unchanged": keep the stored (encrypted) secret."""
    out = _copy(incoming)
    for path in paths:
        if _get(out, path) == MASK:
            previous = _get(stored, path)
            if previous is None:
                # Nothing stored to keep: drop it, so 'required' reports it as missing.
                parent = _get(out, path[:-1]) if len(path) > 1 else out
                if isinstance(parent, dict):
                    parent.pop(path[-1], None)
            else:
                _set(out, path, previous)
    return out
