"""Trust: locked files, signed manifests, and a policy for plugins that are neither.

* :mod:`.integrity` - verifying a plugin's files against its lock (and an installed
  distribution's RECORD, :mod:`.record`), cached by file stamp (:mod:`.stamps`); which files
  a lock covers is :mod:`.coverage`, writing one :mod:`.locking`;
* :mod:`.signatures` - Ed25519 keys and detached manifest signatures;
* :mod:`.verdicts` - :class:`TrustVerdict` and the policy's decision, as plain functions;
* :mod:`.policy` - the same with the settings (``PLUGINS_SIGNATURE_POLICY``,
  ``PLUGINS_TRUSTED_KEYS``); :mod:`.checks` - their system checks;
* :mod:`.gate` - what the loader runs before any plugin code is imported;
* :mod:`.authoring` - ``plugins lock``, ``keygen`` and ``sign``.

The loader and a sandbox child import this package: it imports neither Django nor
``cryptography`` at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .verdicts import Decision, Policy, TrustStatus, TrustVerdict, describe

if TYPE_CHECKING:
    from ..discovery.candidate import Candidate

__all__ = ["Decision", "Policy", "TrustStatus", "TrustVerdict", "describe", "install", "verdict"]


def verdict(candidate: Candidate) -> TrustVerdict:
    """The trust verdict on a discovered plugin under this process's settings: ``status``,
    ``key``, ``locked``, ``problem`` and ``trusted`` (signed by a trusted key, locked, and
    its files intact)."""
    from .policy import verdict as judge  # Django settings: not for the loader's importers

    return judge(candidate)


def install() -> None:
    """Wire trust into the running site (``AppConfig.ready``): the settings' system checks,
    and the signature policy as part of the loader's gate."""
    from . import checks  # noqa: F401  (registers the checks)
    from .gate import install_policy
    from .policy import enforce

    install_policy(enforce)
