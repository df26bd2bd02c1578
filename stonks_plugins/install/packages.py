"""Installing and uninstalling plugin distributions with pip, then syncing.

Install: check the setting, check the target, run ``pip install --report`` under the
environment's lock, make this process see the result, find the plugins the requested
distribution announces, verify them (:mod:`.verify`), sync, and record an event on each
plugin. What fails after pip ran is undone: a distribution that announces no plugin, or
whose plugin is refused, is uninstalled again with the dependencies pip added for it, and
the error says why. (An upgrade that is refused leaves the plugin uninstalled: pip cannot
put the former version back, and leaving refused code installed is worse; install the
former version again.)

Uninstall: only an installed distribution's plugin (a directory plugin is removed by
deleting its folder). ``pip uninstall`` of the distribution that provides it - which removes
every plugin that distribution provides - then a sync: the rows are marked missing, their
configs kept.

The manager passes its own ``sync`` and ``reload`` in (this module must not import the
manager, which calls it).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from .. import store
from ..conf import plugin_settings
from ..discovery import Candidate, Source
from ..errors import IllegalTransition, PluginError, PluginNotFound
from ..installed import GROUPS
from ..models import EventKind, Plugin
from ..redaction import scrub_text
from . import pip, verify
from .results import (
    DISABLED,
    INTEGRITY_FAILED,
    NOT_A_PLUGIN,
    NOT_UNINSTALLABLE,
    PIP_FAILED,
    Installed,
    InstallError,
    InstallResult,
    UninstallResult,
)
from .targets import Target, parse_target, stashed_wheel

logger = logging.getLogger("stonks_plugins.install")

Sync = Callable[..., Any]
"""``manager.sync(actor=...)``."""
Reload = Callable[..., Any]
"""``manager.reload(name, actor=...)``."""


def check_enabled() -> None:
    if not plugin_settings.INSTALL_ENABLED:
        raise InstallError(
            DISABLED,
            "installing and uninstalling plugins is switched off on this site: set "
            "PLUGINS_INSTALL_ENABLED=true to allow it (it lets operators run pip in the "
            "site's own environment)",
        )


# -- install ------------------------------------------------------------------------------------


def install(
    text: str,
    *,
    actor: str,
    sync: Sync,
    reload: Reload,
    upgrade: bool = False,
    label: str | None = None,
) -> InstallResult:
    """Install ``text`` (a wheel, a source folder or a requirement) and sync."""
    check_enabled()
    target = parse_target(text, label)
    with pip.exclusive():
        before = verify.installed_versions()
        run, installed = _pip_install(target, upgrade, before)
        requested = {d.name for d in installed if d.requested}
        if not requested and target.distribution is not None:
            requested = {target.distribution}  # already installed: nothing new, still synced
        found = verify.plugins_of(requested)
        if not found:
            removed = _undo(installed, before)
            what = ", ".join(sorted(requested)) or target.label
            raise InstallError(
                NOT_A_PLUGIN,
                f"{what} announces no plugin: none of its entry points is in the groups "
                f"{', '.join(GROUPS)}" + _undone(removed),
            )
        refused = verify.refusals(found)
        if refused:
            removed = _undo(installed, before)
            sync(actor=actor)
            logger.warning(
                "install of %s by %s refused: %s%s",
                target.label,
                actor,
                "; ".join(refused),
                _undone(removed),
            )
            raise InstallError(
                INTEGRITY_FAILED,
                f"refused {target.label}: {'; '.join(refused)}" + _undone(removed),
            )
        names = [c.name for c in found]
        present = set(
            Plugin.objects.filter(name__in=names, missing=False).values_list("name", flat=True)
        )
        sync(actor=actor)
        _record_installed(found, installed, target, actor)
        for name in sorted(present):
            _reload(reload, name, actor)
    plugins = [p.summary() for p in Plugin.objects.filter(name__in=names)]
    for p in plugins:
        logger.info(
            "plugin %s installed by %s from %s: %s", p["name"], actor, target.label, p["state"]
        )
    return InstallResult(target.label, installed, plugins, run.output)


def install_upload(
    filename: str,
    chunks: Iterable[bytes],
    size: int | None,
    *,
    actor: str,
    sync: Sync,
    reload: Reload,
    upgrade: bool = False,
) -> InstallResult:
    """Install an uploaded wheel (the console's and the API's upload)."""
    check_enabled()  # before a byte of the upload is written anywhere
    with stashed_wheel(filename, chunks, size) as path:
        return install(
            str(path),
            actor=actor,
            sync=sync,
            reload=reload,
            upgrade=upgrade,
            label=f"the uploaded wheel {path.name}",
        )


def _pip_install(
    target: Target, upgrade: bool, before: dict[str, str]
) -> tuple[pip.PipRun, list[Installed]]:
    with tempfile.TemporaryDirectory(prefix="stonks-pip-report-") as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--report", str(report)]
        if upgrade:
            args.append("--upgrade")
        run = pip.run([*args, "--", target.spec])
        verify.refresh()  # whatever pip did, even half of it, this process sees it now
        if not run.ok:
            raise InstallError(
                PIP_FAILED,
                f"pip could not install {target.label} (exit status {run.returncode}); "
                "nothing was installed. pip's output says why",
                run.output,
            )
        installed = _read_report(report, before)
    return run, installed


def _read_report(report: Path, before: dict[str, str]) -> list[Installed]:
    """The distributions pip's installation report lists (pip 22.2 and later)."""
    try:
        data = json.loads(report.read_text("utf-8"))
    except (OSError, ValueError):
        return []
    found = []
    for item in data.get("install") or []:
        meta = item.get("metadata") or {}
        if not meta.get("name"):
            continue
        name = canonicalize_name(str(meta["name"]))
        version = str(meta.get("version", ""))
        found.append(Installed(name, version, bool(item.get("requested")), before.get(name)))
    return found


def _undo(installed: list[Installed], before: dict[str, str]) -> list[str]:
    """Uninstall what this install put in that must not stay: the requested distribution,
    and the dependencies that were not installed before it (a dependency it upgraded is
    left: something else may need it)."""
    names = [d.name for d in installed if d.requested or d.name not in before]
    if not names:
        return []
    run = pip.run(["uninstall", "-y", "--", *names])
    verify.refresh()
    if not run.ok:
        logger.error("could not uninstall %s again: %s", ", ".join(names), run.output)
    return [n for n in names if not verify.is_installed(n)]


def _undone(removed: list[str]) -> str:
    return f"; it was uninstalled again ({', '.join(removed)})" if removed else ""


def _record_installed(
    found: list[Candidate], installed: list[Installed], target: Target, actor: str
) -> None:
    versions = {d.name: d for d in installed}
    rows = {p.name: p for p in Plugin.objects.filter(name__in=[c.name for c in found])}
    for cand in found:
        row = rows.get(cand.name)
        if row is None:
            continue
        dist = canonicalize_name(cand.location.partition("==")[0])
        done = versions.get(dist)
        if done is None:
            reason = f"install of {target.label}: {cand.location} was already installed"
        elif done.previous and done.previous != done.version:
            reason = f"upgraded {dist} {done.previous} -> {done.version} from {target.label}"
        else:
            reason = f"installed {dist}=={done.version} from {target.label}"
        store.record(
            row,
            EventKind.ACTION,
            scrub_text(reason),
            actor,
            {"distribution": cand.location, "target": scrub_text(target.label)},
        )


def _reload(reload: Reload, name: str, actor: str) -> None:
    """Re-import a plugin that was there before the install in every process (same version,
    new files: nothing else tells the processes to drop the old modules)."""
    try:
        plugin = Plugin.objects.get(name=name)
        if plugin.enabled and not plugin.missing:
            reload(name, actor=actor)
    except (Plugin.DoesNotExist, IllegalTransition, PluginError):
        pass  # its row says what is wrong; the install itself is done


# -- uninstall ----------------------------------------------------------------------------------


def uninstall(name: str, *, actor: str, sync: Sync) -> UninstallResult:
    """pip uninstall the distribution that provides plugin ``name``, then sync."""
    check_enabled()
    try:
        row = Plugin.objects.get(name=name)
    except Plugin.DoesNotExist:
        raise PluginNotFound(name) from None
    if row.source == Source.DIRECTORY:
        raise InstallError(
            NOT_UNINSTALLABLE,
            f"plugin '{name}' is a directory plugin ({row.location}): remove it by deleting "
            f"that folder, then run 'manage.py plugins sync' (its row and config are kept; "
            f"'manage.py plugins purge {name}' deletes them)",
        )
    if row.source != Source.ENTRY_POINT:
        raise InstallError(
            NOT_UNINSTALLABLE,
            f"plugin '{name}' is a legacy broker, part of the host: it cannot be uninstalled "
            f"(switch it off with 'manage.py plugins disable {name}')",
        )
    dist = row.location.partition("==")[0]
    if not dist or not verify.is_installed(dist):
        raise InstallError(
            NOT_UNINSTALLABLE,
            f"plugin '{name}': its distribution {dist or '(unknown)'} is not installed; "
            f"'manage.py plugins purge {name}' deletes its rows",
        )
    with pip.exclusive():
        version = metadata.version(dist)
        names = {name, *(c.name for c in verify.plugins_of({dist}))}
        run = pip.run(["uninstall", "-y", "--", dist])
        verify.refresh()
        if not run.ok or verify.is_installed(dist):
            raise InstallError(
                PIP_FAILED,
                f"pip could not uninstall {dist} (plugin '{name}'); pip's output says why",
                run.output,
            )
        removed = f"{dist}=={version}"
        for plugin in Plugin.objects.filter(name__in=names):
            store.record(
                plugin, EventKind.ACTION, f"uninstalled {removed}", actor, {"distribution": removed}
            )
        sync(actor=actor)
    plugins = [p.summary() for p in Plugin.objects.filter(name__in=names)]
    logger.info("distribution %s (plugins %s) uninstalled by %s", removed, sorted(names), actor)
    return UninstallResult(name, removed, plugins, run.output)
