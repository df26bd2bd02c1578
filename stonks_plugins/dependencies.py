"""Plugins that need other plugins (manifest ``dependencies.plugins``).

Pure functions over discovery results and the enabled flags: which plugins cannot run
because a plugin they need is missing, disabled, broken, of the wrong version or part of a
cycle; and in which order to bring plugins up (needed ones first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from graphlib import CycleError, TopologicalSorter

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from .discovery.candidate import Candidate, Problem
from .errors import ReasonCode


def graph(candidates: Iterable[Candidate]) -> dict[str, set[str]]:
    return {
        c.name: set(c.manifest.plugin_dependencies) if c.manifest else set() for c in candidates
    }


def load_order(candidates: Iterable[Candidate]) -> list[str]:
    """Names with every plugin after the ones it needs; plugins on a cycle come last."""
    return _order(graph(candidates))


def _order(g: Mapping[str, set[str]], cycles: Mapping[str, list[str]] | None = None) -> list[str]:
    cyclic = set(find_cycles(g) if cycles is None else cycles)
    known = g.keys()
    acyclic = {n: (deps & known) - cyclic for n, deps in g.items() if n not in cyclic}
    return [*TopologicalSorter(acyclic).static_order(), *sorted(cyclic)]


def find_cycles(g: Mapping[str, set[str]]) -> dict[str, list[str]]:
    """Every plugin on a dependency cycle, with the cycle it is on."""
    on_cycle: dict[str, list[str]] = {}
    known = g.keys()
    remaining = {k: set(v) & known for k, v in g.items()}
    if not any(remaining.values()):
        return on_cycle  # no plugin needs another (the usual case): no cycle
    while True:
        try:
            TopologicalSorter(remaining).prepare()
            return on_cycle
        except CycleError as err:
            cycle = list(err.args[1])
            for node in cycle[:-1]:
                on_cycle[node] = cycle
            for node in cycle[:-1]:
                remaining.pop(node, None)
            for deps in remaining.values():
                deps.difference_update(cycle)


def dependency_problems(
    candidates: Mapping[str, Candidate], enabled: Mapping[str, bool]
) -> dict[str, Problem]:
    """Problems caused by plugin dependencies, for plugins that are otherwise fine.

    A plugin fails when a plugin it needs is unknown, disabled, not valid, the wrong version,
    itself failing for this reason, or when it sits on a dependency cycle.
    """
    return dependency_problems_in_order(candidates, enabled)[0]


def dependency_problems_in_order(
    candidates: Mapping[str, Candidate],
    enabled: Mapping[str, bool],
    g: Mapping[str, set[str]] | None = None,
) -> tuple[dict[str, Problem], list[str]]:
    """:func:`dependency_problems`, and the :func:`load_order` it was worked out in. ``g``:
    the :func:`graph` of ``candidates`` when the caller has it (a sync builds it while it
    reads each manifest for its own needs: a manifest is decoded again at each read)."""
    problems: dict[str, Problem] = {}
    if g is None:
        g = graph(candidates.values())
    cycles = find_cycles(g)
    for name, cycle in cycles.items():
        problems[name] = Problem(
            ReasonCode.MISSING_DEPENDENCY,
            "plugin dependency cycle: "
            + " -> ".join(cycle)
            + "; remove one of these dependencies (dependencies.plugins)",
        )
    order = _order(g, cycles)
    for name in order:
        cand = candidates[name]
        if not g[name] or name in problems or not cand.ok:
            continue
        manifest = cand.manifest
        if manifest is None:
            continue
        for dep, spec in sorted(manifest.plugin_dependencies.items()):
            reason = _why_unusable(dep, spec, candidates, enabled, problems)
            if reason:
                problems[name] = Problem(
                    ReasonCode.MISSING_DEPENDENCY,
                    f"needs plugin '{dep}' ({spec or 'any version'}) {reason}",
                )
                break
    return problems, order


def _why_unusable(
    dep: str,
    spec: str,
    candidates: Mapping[str, Candidate],
    enabled: Mapping[str, bool],
    problems: Mapping[str, Problem],
) -> str | None:
    other = candidates.get(dep)
    if other is None:
        return "which is not installed"
    if other.problem is not None or other.manifest is None:
        code = other.problem.code.value if other.problem else "invalid"
        return f"which cannot run ({code})"
    if not enabled.get(dep, True):
        return "which is disabled"
    if dep in problems:
        return f"which cannot run: {problems[dep].message}"
    try:
        version = Version(other.manifest.version)
    except InvalidVersion:
        return f"whose version {other.manifest.version!r} cannot be compared"
    if spec and not SpecifierSet(spec).contains(version, prereleases=True):
        return f"but version {version} is installed"
    return None


def dependents_of(name: str, candidates: Iterable[Candidate]) -> list[str]:
    """Plugins that need ``name``, directly or through others."""
    g = graph(candidates)
    found: set[str] = set()
    frontier = {name}
    if not any(name in deps for deps in g.values()):
        return []  # nobody needs it (the usual case)
    while frontier:
        nxt = {n for n, deps in g.items() if deps & frontier and n not in found}
        found |= nxt
        frontier = nxt
    found.discard(name)
    return sorted(found)
