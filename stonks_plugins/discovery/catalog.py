"""Put the sources together: one winner per name, compatibility verdicts.

Duplicate rule (documented in the README): an installed distribution (entry point) beats a
plugin directory; between directories, the one listed first in PLUGIN_DIRS wins; within one
directory, the folder whose name sorts first wins. A candidate with a readable, valid manifest
always beats a broken one. Losers are kept as ``NAME@LOCATION`` in error ``duplicate``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from ..compatibility import CompatIssue, check_compatibility, compatibility
from ..errors import ReasonCode
from ..plugin_files import forget_manifest_reads
from .candidate import Candidate, Problem
from .directories import generation, scan_directories
from .entry_points import scan_entry_points


@dataclass
class DiscoveryResult:
    plugins: list[Candidate] = field(default_factory=list)

    def by_name(self) -> dict[str, Candidate]:
        return {c.name: c for c in self.plugins}

    def get(self, name: str) -> Candidate | None:
        return self.by_name().get(name)


def resolve_duplicates(candidates: Iterable[Candidate]) -> list[Candidate]:
    found = list(candidates)
    if len({c.name for c in found}) == len(found):
        return found  # the usual case, and cheap to detect: no name is taken twice
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for cand in found:
        groups[cand.name].append(cand)
    taken = set(groups)
    result: list[Candidate] = []
    for name, group in groups.items():
        group.sort(key=lambda c: (not c.ok, c.rank))
        winner, losers = group[0], group[1:]
        notes: list[str] = []
        for loser in losers:
            new_name, n = f"{name}@{loser.label}", 2
            while new_name in taken:
                new_name, n = f"{name}@{loser.label}-{n}", n + 1
            taken.add(new_name)
            notes.append(f"also found at {loser.location} (kept as '{new_name}')")
            result.append(
                loser.with_problem(
                    Problem(
                        ReasonCode.DUPLICATE,
                        f"another plugin named '{name}' at {winner.location} takes precedence over "
                        f"this one at {loser.location} (installed distributions beat plugin "
                        "directories, earlier PLUGIN_DIRS entries beat later ones, then folder "
                        "names in order); rename one of them or remove the copy you do not want",
                    ),
                    name=new_name,
                )
            )
        result.append(winner.evolve(warnings=(*winner.warnings, *notes)) if notes else winner)
    return result


def apply_compatibility(cand: Candidate) -> Candidate:
    if not cand.ok or cand.manifest is None:
        return cand
    return _with_issues(cand, check_compatibility(cand.manifest))


def _with_issues(cand: Candidate, issues: list[CompatIssue]) -> Candidate:
    if not issues:
        return cand
    first = issues[0]
    message = "; ".join(i.message for i in issues)
    details = tuple({"code": i.code.value, "message": i.message} for i in issues)
    return cand.with_problem(Problem(first.code, message, details))


@dataclass(frozen=True)
class _LastScan:
    found: list[Candidate]
    """What the sources returned; the directory cache returns the very same objects for
    manifests that did not change."""
    resolved: list[Candidate]
    """After the duplicate rule, sorted by name, before compatibility."""
    plugins: list[Candidate]
    """The verdicts."""
    live: tuple[int, ...]
    """Positions whose verdict depends on installed distributions, re-checked every time."""
    generation: int
    """``directories.generation()`` when the scan began: ``clear_cache`` there voids this."""


_last: _LastScan | None = None
_BY_NAME = attrgetter("name")


def _unchanged(before: list[Candidate], now: list[Candidate]) -> bool:
    if len(before) != len(now):
        return False
    try:
        return all(a is b or a == b for a, b in zip(before, now, strict=True))
    except RecursionError:  # comparing two deeply nested manifests: call it a change
        return False


def discover(
    plugin_dirs: list[Path] | None = None, *, entry_points: bool = True
) -> DiscoveryResult:
    """Find every plugin. ``plugin_dirs`` defaults to ``settings.PLUGIN_DIRS``.

    When the sources return what they returned last time (nothing changed on disk or in the
    installed distributions' manifests), the duplicate rule and the verdicts are reused;
    only verdicts that depend on installed distributions are worked out again.
    """
    global _last
    if plugin_dirs is None:
        # Imported here, not at the top: the settings module imports Django, and a
        # process-isolated plugin's child imports this package (for ``Candidate``) and must
        # start without Django (test_process_isolation checks it). Not a cycle: ``conf``
        # imports nothing of the plugin system.
        from ..conf import plugin_settings

        plugin_dirs = plugin_settings.plugin_dirs
    scanned_at = generation()
    found = scan_entry_points() if entry_points else []
    found += scan_directories(plugin_dirs)
    forget_manifest_reads()  # start-up's reads that no source took (the caches keep the rest)
    last = _last
    if last is not None and last.generation == scanned_at and _unchanged(last.found, found):
        again = list(last.plugins)
        for i in last.live:
            again[i] = apply_compatibility(last.resolved[i])
        return DiscoveryResult(again)
    resolved = sorted(resolve_duplicates(found), key=_BY_NAME)
    plugins: list[Candidate] = []
    live: list[int] = []
    for i, cand in enumerate(resolved):
        manifest = cand.manifest
        if cand.problem is None and manifest is not None:
            issues, depends = compatibility(manifest)
            if issues:
                cand = _with_issues(cand, issues)
            if depends:
                live.append(i)
        plugins.append(cand)
    _last = _LastScan(found, resolved, plugins, tuple(live), scanned_at)
    # The verdicts are made: what the caches keep, keep small (see Candidate.pack).
    for kept in (found, resolved, plugins):
        for cand in kept:
            cand.pack()
    return DiscoveryResult(list(plugins))
