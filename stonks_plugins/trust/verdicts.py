"""A plugin's trust verdict, and what a signature policy makes of it.

:func:`assess` is the one place that decides a plugin's trust status from its files, its
signature and the trusted keys; :func:`decide` applies a policy to a verdict. Both are plain
functions of their arguments (no Django, no settings): ``django_apps`` uses them at settings
time, :mod:`.policy` with the settings.

Statuses, checked in this order:

* ``tampered`` - a locked plugin's files do not match its lock, or an installed
  distribution's files do not match its RECORD: refused under every policy;
* ``unsigned`` - no ``plugin_manifest.sig``;
* ``bad_signature`` - the signature file is malformed or does not match the manifest's bytes
  (the manifest was edited after signing);
* ``untrusted_key`` - a valid signature by a key not in ``PLUGINS_TRUSTED_KEYS``;
* ``signed`` - a valid signature by a trusted key. ``trusted`` is true only when the plugin is
  also locked: a signature over a manifest without a lock vouches for no code.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from . import integrity
from .integrity import MANIFEST_FILENAME, SIGNATURE_FILENAME, Entry


class TrustStatus(StrEnum):
    SIGNED = "signed"
    UNSIGNED = "unsigned"
    UNTRUSTED_KEY = "untrusted_key"
    BAD_SIGNATURE = "bad_signature"
    TAMPERED = "tampered"


class Policy(StrEnum):
    """``PLUGINS_SIGNATURE_POLICY``: what happens to a plugin not signed by a trusted key."""

    OFF = "off"
    WARN = "warn"
    ENFORCE = "enforce"


def parse_policy(value: Any) -> Policy:
    """The policy ``value`` names; an unknown one counts as ``enforce`` (fail closed; the
    system check names the bad value)."""
    try:
        return Policy(str(value or "off").strip().lower())
    except ValueError:
        return Policy.ENFORCE


def canonical_keys(texts: Iterable[str]) -> frozenset[str]:
    """The public keys ``texts`` name, canonical; a malformed one trusts nothing (and is a
    check error). ``cryptography`` (~20 ms to import) is imported only when keys are set."""
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        return frozenset()
    from .signatures import KeyProblem, canonical_key

    keys = set()
    for text in texts:
        try:
            keys.add(canonical_key(text))
        except KeyProblem:
            continue
    return frozenset(keys)


@dataclass(frozen=True)
class TrustVerdict:
    status: TrustStatus
    key: str | None = None
    """The public key that signed the manifest (valid signatures only)."""
    locked: bool = False
    """The manifest has a lock (an ``integrity`` section)."""
    problem: str | None = None
    """What is wrong, for a person (tampered files, a bad signature, a signature over no
    lock)."""
    trusted: bool = False
    """Signed by a trusted key, locked, and the files intact."""

    def as_dict(self) -> dict[str, Any]:
        """The form stored in ``Plugin.trust`` and shown by the API and ``--json``."""
        out = asdict(self)
        out["status"] = self.status.value
        return out


@dataclass(frozen=True)
class Decision:
    refusal: str | None = None
    """Why the plugin must not load (it fails with ``integrity_failed``)."""
    warning: str | None = None
    """What to record on the plugin's row although it loads."""


# -- assessing ------------------------------------------------------------------------------------

_SigResult = tuple[str | None, str | None, bool]
"""(key, problem, manifest changed since discovery) of a signature file."""
_sig_cache: dict[str, tuple[str, tuple[Entry, ...], _SigResult]] = {}
_sig_lock = threading.Lock()


def clear_cache() -> None:
    with _sig_lock:
        _sig_cache.clear()
    integrity.clear_cache()


def _signature(root: str, fingerprint: str) -> _SigResult | None:
    """The signature beside the manifest in ``root``, checked against the manifest's bytes
    (which must be those discovery read: ``fingerprint``); None when there is none."""
    sig_path = os.path.join(root, SIGNATURE_FILENAME)
    manifest_path = os.path.join(root, MANIFEST_FILENAME)
    try:
        sig_st = os.stat(sig_path)
        manifest_st = os.stat(manifest_path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return None, f"{SIGNATURE_FILENAME} cannot be read: {exc.strerror or exc}", False
    entries = (
        (sig_path, sig_st.st_mtime_ns, sig_st.st_ctime_ns, sig_st.st_size, sig_st.st_ino),
        (
            manifest_path,
            manifest_st.st_mtime_ns,
            manifest_st.st_ctime_ns,
            manifest_st.st_size,
            manifest_st.st_ino,
        ),
    )
    hit = _sig_cache.get(root)
    if hit is not None and hit[0] == fingerprint and hit[1] == entries:
        return hit[2]
    t0 = time.time_ns()
    result = _check_signature(Path(sig_path), Path(manifest_path), fingerprint)
    if not any(max(e[1], e[2]) >= t0 - integrity.RACY_NS for e in entries):
        with _sig_lock:
            _sig_cache[root] = (fingerprint, entries, result)
    return result


def _check_signature(sig_path: Path, manifest_path: Path, fingerprint: str) -> _SigResult:
    # cryptography costs ~20 ms to import: only plugins with a signature file pay for it
    # (the loader and a sandbox child import this module, and most plugins are unsigned).
    from .signatures import read_signature

    try:
        signature = read_signature(sig_path)
        data = manifest_path.read_bytes()
    except (OSError, ValueError) as exc:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, f"bad signature file: {text}", False
    if fingerprint and hashlib.sha256(data).hexdigest() != fingerprint:
        return None, f"{MANIFEST_FILENAME} changed while it was checked; sync again", True
    if not signature.verifies(data):
        return (
            None,
            f"{SIGNATURE_FILENAME} (by {signature.key}) does not match {MANIFEST_FILENAME}: "
            "the manifest was changed after it was signed",
            False,
        )
    return signature.key, None, False


def assess(
    root: str | Path | None,
    expected: Mapping[str, str],
    *,
    fingerprint: str = "",
    distribution: str | None = None,
    trusted_keys: frozenset[str] = frozenset(),
) -> TrustVerdict:
    """The verdict on a plugin whose files are in ``root`` (folder, or installed package),
    locked with ``expected`` (its manifest's ``integrity``; empty when not locked), whose
    manifest's bytes discovery read had the SHA-256 ``fingerprint``, installed as
    ``distribution`` (entry-point plugins), judged against ``trusted_keys`` (canonical
    texts)."""
    locked = bool(expected)
    report = integrity.check(root, expected, distribution)
    if report is not None and not report.ok:
        return TrustVerdict(TrustStatus.TAMPERED, locked=locked, problem=report.message)
    found = _signature(str(root), fingerprint) if root is not None else None
    if found is None:
        return TrustVerdict(TrustStatus.UNSIGNED, locked=locked)
    key, problem, raced = found
    if raced:
        return TrustVerdict(TrustStatus.TAMPERED, locked=locked, problem=problem)
    if key is None:
        return TrustVerdict(TrustStatus.BAD_SIGNATURE, locked=locked, problem=problem)
    if key not in trusted_keys:
        return TrustVerdict(TrustStatus.UNTRUSTED_KEY, key=key, locked=locked)
    if not locked:
        return TrustVerdict(
            TrustStatus.SIGNED,
            key=key,
            locked=False,
            problem="signed, but not locked: the signature vouches for no code file; lock "
            "the plugin, then sign it again",
        )
    return TrustVerdict(TrustStatus.SIGNED, key=key, locked=True, trusted=True)


# -- deciding -------------------------------------------------------------------------------------


def _why_not_trusted(verdict: TrustVerdict) -> tuple[str, str]:
    """(what is wrong, what to do) for a verdict that is not trusted."""
    sign = (
        "lock and sign it ('manage.py plugins lock NAME', then 'manage.py plugins sign NAME "
        "--key FILE') with a key listed in PLUGINS_TRUSTED_KEYS"
    )
    if verdict.status is TrustStatus.UNSIGNED:
        return "it is not signed", sign
    if verdict.status is TrustStatus.UNTRUSTED_KEY:
        return (
            f"it is signed by {verdict.key}, a key not listed in PLUGINS_TRUSTED_KEYS",
            "add that key to PLUGINS_TRUSTED_KEYS if you trust whoever holds it",
        )
    if verdict.status is TrustStatus.BAD_SIGNATURE:
        return f"its signature is bad: {verdict.problem}", "sign it again after checking it"
    return verdict.problem or "it is not trusted", sign


def decide(verdict: TrustVerdict, policy: Policy) -> Decision:
    """What ``policy`` makes of ``verdict``: tampered files are refused under every policy;
    under ``enforce`` anything not trusted is refused; under ``warn`` it loads with a
    warning; ``off`` asks nothing of signatures."""
    if verdict.status is TrustStatus.TAMPERED:
        return Decision(refusal=verdict.problem or "its files do not match its lock")
    if verdict.trusted or policy is Policy.OFF:
        return Decision()
    why, fix = _why_not_trusted(verdict)
    if policy is Policy.ENFORCE:
        return Decision(refusal=f"{why}, and PLUGINS_SIGNATURE_POLICY is 'enforce': {fix}")
    return Decision(warning=f"{why}; it loads because PLUGINS_SIGNATURE_POLICY is 'warn'")


# -- showing --------------------------------------------------------------------------------------


def short_key(key: str) -> str:
    """``ed25519:AbCd…WxYz=``: enough to tell keys apart in a list."""
    prefix, _, body = key.partition(":")
    return f"{prefix}:{body[:6]}…{body[-6:]}" if len(body) > 14 else key


def describe(trust: Mapping[str, Any] | None, short: bool = False, source: str = "") -> str:
    """One line for a person from a stored verdict (``Plugin.trust``) of a plugin found in
    ``source``."""
    if source == "legacy":
        return "part of the host (a legacy broker): nothing to verify"
    if not trust or "status" not in trust:
        return "not checked yet (run 'manage.py plugins sync')"
    status = trust.get("status")
    key = str(trust.get("key") or "")
    shown = short_key(key) if short else key
    locked = "locked" if trust.get("locked") else "not locked"
    problem = trust.get("problem")
    if status == TrustStatus.SIGNED:
        if trust.get("trusted"):
            return f"signed by {shown} (trusted key), locked"
        return f"signed by {shown}, {problem or 'not trusted'}"
    if status == TrustStatus.UNTRUSTED_KEY:
        return f"signed by {shown}, a key that is not trusted; {locked}"
    if status == TrustStatus.UNSIGNED:
        return f"unsigned, {locked}"
    if status == TrustStatus.BAD_SIGNATURE:
        return f"bad signature: {problem}"
    if status == TrustStatus.TAMPERED:
        return f"tampered: {problem}"
    return str(status)
