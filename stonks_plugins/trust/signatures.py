"""Ed25519 signatures of plugin manifests (with ``cryptography``).

A signature is detached: ``plugin_manifest.sig`` next to the manifest, a JSON object
``{"key": "ed25519:<base64>", "signature": "<base64>"}``. It signs the manifest file's exact
bytes, which hold the lock (the ``integrity`` section): the signature vouches for every
locked file through it. ``key`` says which key signed, so an operator sees it before trusting
it; trust itself comes only from ``PLUGINS_TRUSTED_KEYS``.

A public key is written ``ed25519:`` followed by the standard base64 of its 32 raw bytes:
one line, no comma, so a list of them fits an environment variable. A private key is a PEM
file (PKCS#8, unencrypted: keep it off the server, mode 0600).

Nothing here imports Django.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ..errors import StonksPluginsError
from .integrity import SIGNATURE_FILENAME, write_atomically

KEY_PREFIX = "ed25519:"
MAX_SIGNATURE_BYTES = 4096
"""A signature file is about 150 bytes; anything much larger is not one (and is not read)."""


class KeyProblem(StonksPluginsError, ValueError):
    """A key file or key text is not a usable Ed25519 key; the message says why."""


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """The key ``text`` (as ``plugins keygen`` prints it); ``KeyProblem`` naming the fault."""
    if not isinstance(text, str) or not text.strip().startswith(KEY_PREFIX):
        raise KeyProblem(
            f"{str(text)[:60]!r} is not an Ed25519 public key: expected '{KEY_PREFIX}'"
        )
    body = text.strip()[len(KEY_PREFIX) :]
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem(f"{text[:60]!r}: the part after '{KEY_PREFIX}' is not base64") from None
    if len(raw) != 32:
        raise KeyProblem(f"{text[:60]!r}: an Ed25519 public key is 32 bytes, this is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def canonical_key(text: str) -> str:
    """One spelling per key (whitespace trimmed, base64 re-encoded), for comparing keys."""
    return public_text(parse_public_key(text))


def generate_key_file(path: Path) -> str:
    """Write a new private key to ``path`` (PEM, mode 0600; an existing file is never
    overwritten) and return its public key's text."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyProblem(f"{path} already exists; keygen never overwrites a key file") from None
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot create the key file: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return public_text(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read the key file: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyProblem(
            f"{path}: not an unencrypted PEM private key ({exc}); make one with "
            "'manage.py plugins keygen FILE'"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"{path}: the key is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class Signature:
    key: str
    """The signer's public key, as text."""
    signature: bytes

    def verifies(self, data: bytes) -> bool:
        try:
            parse_public_key(self.key).verify(self.signature, data)
        except (InvalidSignature, KeyProblem):
            return False
        return True


def sign_manifest(folder: Path, manifest_bytes: bytes, key: Ed25519PrivateKey) -> Path:
    """Write the detached signature of ``manifest_bytes`` into ``folder``."""
    body = {
        "key": public_text(key.public_key()),
        "signature": base64.b64encode(key.sign(manifest_bytes)).decode("ascii"),
    }
    path = folder / SIGNATURE_FILENAME
    write_atomically(path, (json.dumps(body, indent=2) + "\n").encode("ascii"), 0o644)
    return path


def read_signature(path: Path) -> Signature:
    """The signature file at ``path``; ``ValueError`` saying what is wrong with it."""
    with open(path, "rb") as f:
        data = f.read(MAX_SIGNATURE_BYTES + 1)
    if len(data) > MAX_SIGNATURE_BYTES:
        raise ValueError(f"{SIGNATURE_FILENAME} is over {MAX_SIGNATURE_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{SIGNATURE_FILENAME} is not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("key"), str):
        raise ValueError(f'{SIGNATURE_FILENAME} has no "key"')
    if not isinstance(doc.get("signature"), str):
        raise ValueError(f'{SIGNATURE_FILENAME} has no "signature"')
    try:
        key = canonical_key(doc["key"])
    except KeyProblem as exc:
        raise ValueError(f"{SIGNATURE_FILENAME}: {exc}") from None
    try:
        sig = base64.b64decode(doc["signature"], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f'{SIGNATURE_FILENAME}: "signature" is not base64') from None
    return Signature(key, sig)
