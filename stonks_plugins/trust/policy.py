"""The trust settings applied: ``PLUGINS_SIGNATURE_POLICY`` and ``PLUGINS_TRUSTED_KEYS``, read
through :data:`~stonks_plugins.conf.plugin_settings` on every call (``override_settings``
works, nothing is cached but the parsed keys of one settings value).

``verdict(candidate)`` is the one answer to "may this plugin's code be trusted" (sync stores
it on the row; process isolation of untrusted plugins asks it); ``refusal``/``enforce`` apply
the policy. A bad setting is a system check error (:mod:`.checks`); until it is fixed the
policy fails closed: an unknown policy counts as ``enforce``, a malformed key trusts nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..conf import plugin_settings
from ..errors import PluginError, ReasonCode
from . import verdicts
from .integrity import distribution_of, expected_of
from .verdicts import Decision, Policy, TrustVerdict

if TYPE_CHECKING:
    from ..discovery.candidate import Candidate

logger = logging.getLogger(__name__)


def key_texts(value: Any) -> list[str]:
    """``PLUGINS_TRUSTED_KEYS`` as a list of texts: a list, or one comma-separated string
    (as the environment gives it)."""
    if isinstance(value, str):
        return [k.strip() for k in value.split(",") if k.strip()]
    if isinstance(value, Iterable):
        return [str(k).strip() for k in value if str(k).strip()]
    return []


def policy_problem(value: Any) -> str | None:
    if isinstance(value, str) and value.strip().lower() in Policy._value2member_map_:
        return None
    return f"PLUGINS_SIGNATURE_POLICY is {value!r}; it must be one of " + ", ".join(
        repr(p.value) for p in Policy
    )


def current_policy() -> Policy:
    return verdicts.parse_policy(plugin_settings.SIGNATURE_POLICY)


_keys_memo: tuple[tuple[str, ...], frozenset[str]] | None = None


def trusted_keys() -> frozenset[str]:
    """The trusted keys, canonical; a malformed one is left out (and is a check error)."""
    global _keys_memo
    texts = tuple(key_texts(plugin_settings.TRUSTED_KEYS))
    memo = _keys_memo
    if memo is None or memo[0] != texts:
        memo = _keys_memo = (texts, verdicts.canonical_keys(texts))
    return memo[1]


def verdict(candidate: Candidate) -> TrustVerdict:
    """The trust verdict on a discovered plugin, with this process's trusted keys."""
    root = candidate.root
    return verdicts.assess(
        root,
        expected_of(candidate),
        fingerprint=candidate.fingerprint or "",
        distribution=distribution_of(candidate),
        trusted_keys=trusted_keys() if root is not None else frozenset(),
    )


def decision(candidate: Candidate) -> tuple[TrustVerdict, Decision]:
    found = verdict(candidate)
    return found, verdicts.decide(found, current_policy())


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_once(name: str, warning: str) -> None:
    """Log a policy warning once per plugin and wording in this process."""
    with _warned_lock:
        if (name, warning) in _warned:
            return
        _warned.add((name, warning))
    logger.warning("plugin %s: %s", name, warning)


def enforce(candidate: Candidate) -> None:
    """The loader's gate (see :mod:`.gate`): raise ``integrity_failed`` when the policy
    refuses the plugin; log a ``warn`` policy's warning once."""
    chosen = current_policy()
    if chosen is Policy.OFF:
        return  # only tampering refuses then, and the gate's integrity check has seen to it
    decided = verdicts.decide(verdict(candidate), chosen)
    if decided.refusal is not None:
        raise PluginError(candidate.name, ReasonCode.INTEGRITY_FAILED, decided.refusal)
    if decided.warning is not None:
        warn_once(candidate.name, decided.warning)
