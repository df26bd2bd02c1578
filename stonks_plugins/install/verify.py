"""After pip: make this process see the environment as pip left it, find the plugins the new
distributions provide, and judge them as the loader will - before any of their code runs.

The judgement is the trust policy's (:func:`stonks_plugins.trust.policy.decision`): the
installed files against the wheel's ``RECORD`` and against the manifest's lock
(``integrity``), and the signature under ``PLUGINS_SIGNATURE_POLICY``. What it refuses would
only ever sit in ``error`` (``integrity_failed``); installing refuses it at once instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from importlib import metadata

from packaging.utils import canonicalize_name

from ..discovery import Candidate, Source, discover
from ..discovery.entry_points import forget_entry_points
from ..trust import policy
from ..trust.integrity import distribution_of


def refresh() -> None:
    """Forget what this process cached about installed distributions: the import system's
    finders, and discovery's scan of the entry points. (Other processes on the host see the
    change by themselves: their scan is keyed by the import path folders' mtimes, which pip
    changed, and the sync that follows bumps the generation they poll.)"""
    importlib.invalidate_caches()
    forget_entry_points()


def installed_versions() -> dict[str, str]:
    """Every installed distribution, canonical name -> version, as this process sees it."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            found.setdefault(canonicalize_name(name), dist.version)
    return found


def is_installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return True


def plugins_of(distributions: Collection[str]) -> list[Candidate]:
    """The discovered plugins announced by the distributions named (canonical names)."""
    wanted = {canonicalize_name(d) for d in distributions}
    found = []
    for cand in discover().plugins:
        if cand.source is not Source.ENTRY_POINT:
            continue
        dist = distribution_of(cand)
        if dist is not None and canonicalize_name(dist) in wanted:
            found.append(cand)
    return found


def refusals(candidates: Collection[Candidate]) -> list[str]:
    """Why each refused plugin may not run ('NAME: reason'); empty when all may."""
    refused = []
    for cand in candidates:
        _, decided = policy.decision(cand)
        if decided.refusal is not None:
            refused.append(f"plugin '{cand.name}': {decided.refusal.rstrip('.')}")
    return refused
