"""What this process serves, kept in line with the database.

The core registry calls :meth:`ServingSet.refresh` before each read; it compares the
propagation stamp (cheap, throttled) and, when plugins changed, re-registers exactly the
plugins the database says are served: broker plugins as lazy providers in the legacy
registry (:mod:`stonks_plugins.legacy.bridge`), the other types in this set only, and the
legacy brokers as their rows say (:mod:`stonks_plugins.legacy.adapter`).

A refresh runs in the caller's thread - often a request's - so it does only what is cheap
and runs no plugin code while it holds its lock: a plugin that leaves is shut down after the
lock is released (on a background thread in a serving process), a new config is handed to a
loaded plugin on its lane, and new plugins are announced to the warmer, which loads them in
the background. It reads the database and writes nothing.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db.models import OuterRef, Q, Subquery

from stonks_overwatch.core.registry import BrokerRegistry

from .. import generation, propagation
from ..conf import plugin_settings
from ..config.system import config_system
from ..discovery import Candidate, discover
from ..discovery.candidate import Source
from ..instance_names import candidate_for
from ..legacy.adapter import LegacyRow, legacy_serving
from ..legacy.bridge import register_broker, unregister_broker
from ..legacy.modes import registry_mode
from ..lifecycle.states import PluginState
from ..loaded import make_config, warn_false_return
from ..models import Plugin, PluginConfig
from ..registry import LoadedPlugin, plugin_registry
from ..sandbox import SandboxError
from ..sandbox.timeouts import Pending
from ..store import may_recover
from . import budget, lanes, lastgood, loads, outbox, repeats
from .threads import in_plugin_thread

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Serving:
    revision: int
    config_version: int
    failing: bool = False
    """Served although in a retryable error: a load that succeeds here brings it back."""


class ServingSet:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._applied: str | None = None
        # Never checked: -inf, not 0 (time.monotonic() counts from boot, and a machine up
        # for less than the interval would otherwise wait for the first check).
        self._checked_at = -math.inf
        self._read_at = 0.0  # when the rows this set was last built from were read
        self._registered: dict[str, str] = {}  # plugin name -> _identity(candidate)
        self._config_versions: dict[str, int] = {}
        self._types: dict[str, str] = {}
        self._hook_done: set[str] = set()
        self.legacy = legacy_serving
        self._arrivals: list[Callable[[list[str]], None]] = []
        self.failing: frozenset[str] = frozenset()
        """Served plugins whose row is in a retryable error (see :class:`Serving`)."""
        # What a change still has running before it is served here: config hand-overs on
        # the plugins' lanes, and refreshes still starting them (see :meth:`settling`).
        self._settle = threading.Condition(threading.Lock())
        self._starting = 0
        self._handovers: list[Pending] = []

    @property
    def registered(self) -> list[str]:
        return sorted(self._registered)

    def on_arrival(self, hook: Callable[[list[str]], None]) -> None:
        """``hook(names)`` when plugins start being served here (the warmer loads them)."""
        if hook not in self._arrivals:
            self._arrivals.append(hook)

    def invalidate(self) -> None:
        """Refresh on the next registry read, whatever the throttle says."""
        self._applied = None
        self._checked_at = -math.inf
        self._read_at = 0.0

    @property
    def read_at(self) -> float:
        """When (``time.monotonic()``) the rows this set was built from were read."""
        return self._read_at

    def settling(self, timeout: float = 5.0) -> list[Pending]:
        """The config hand-overs still running that the changes read so far started, once
        every refresh that read them has started its work (waited for at most ``timeout``):
        what this process still does before it serves those changes."""
        end = time.monotonic() + timeout
        with self._settle:
            while self._starting and self._settle.wait(max(0.0, end - time.monotonic())):
                pass
            handovers, self._handovers = self._handovers, []
        return [h for h in handovers if not h.done.is_set()]

    def refresh(self, force: bool = False, newer_than: float | None = None) -> None:
        """Register what the rows say when plugins changed (the stamp differs; ``force``:
        whatever it says), at most every ``PLUGINS_REFRESH_INTERVAL`` unless forced.
        ``newer_than`` (a ``time.monotonic()``, with ``force``): unless the set was built
        from rows read since - by another thread, as a pushed change wakes them all."""
        now = time.monotonic()
        # The throttle first: a page asks this dozens of times, nearly always within it.
        if not force and now - self._checked_at < float(plugin_settings.REFRESH_INTERVAL):
            return
        if plugin_settings.SAFE_MODE:
            return  # no plugin is served, whoever asks (views, tasks, the CLI)
        if in_plugin_thread():
            return  # its caller refreshed; this thread must not read the database
        if not force and self._kept_current_for_pages():
            return
        with self._lock:
            self._checked_at = now
            if newer_than is not None and self._read_at >= newer_than:
                return
            stamp = propagation.read()
            if stamp is None or (stamp == self._applied and not force):
                return
            mode = registry_mode()
            read_at = time.monotonic()
            try:
                active, legacy = _rows() if mode != "legacy" else ({}, {})
            except Exception:
                logger.exception("could not read plugin states; keeping the current set")
                return
            arrived, later = self._apply(active, legacy, mode)
            self.failing = frozenset(n for n, row in active.items() if row.failing)
            self._applied = stamp
            with self._settle:
                self._starting += 1
            self._read_at = read_at
        try:
            generation.bump()
            # Plugin code (shutdowns, config hooks) only once the lock is released: another
            # thread's refresh never waits on a plugin.
            for work in later:
                work()
            for hook in list(self._arrivals):
                hook(arrived)
        finally:
            with self._settle:
                self._starting -= 1
                self._settle.notify_all()

    def _kept_current_for_pages(self) -> bool:
        """A page (or the warm-up's) in a process whose background runtime keeps this set
        current - every ``PLUGINS_REFRESH_INTERVAL``, and at once when a change is pushed -
        does not read the rows itself once that runtime has read them: reading them again
        after each change, on the first page of every process, cost that page several ms."""
        return self._applied is not None and budget.current() is not None and outbox.in_background()

    def _apply(
        self,
        active: dict[str, Serving],
        legacy: dict[str, LegacyRow] | None = None,
        mode: str = "alongside",
    ) -> tuple[list[str], list[Callable[[], Any]]]:
        """Register what the rows say; returns the plugins that arrived and the work that
        runs plugin code (to do after the lock is released)."""
        registry = BrokerRegistry()
        later: list[Callable[[], Any]] = []
        catalog = discover().by_name() if active else {}
        wanted: dict[str, Candidate] = {}
        for name in active:
            cand = candidate_for(catalog, name)  # an instance: its base's, renamed
            if cand is not None and cand.ok:
                wanted[name] = cand
            else:
                logger.warning(
                    "plugin %s is active in the database but not found or not "
                    "valid on this host; run 'manage.py plugins sync'",
                    name,
                )
        for name in list(self._registered):
            stale = (
                name in wanted
                and _identity(wanted[name], active[name].revision) != self._registered[name]
            )
            if name not in wanted or stale:
                if self._types.pop(name, "broker") == "broker":
                    unregister_broker(name)
                loads.forget(name)
                _start_afresh(name)
                detached = plugin_registry.detach(name)
                if detached is not None:
                    wait = not outbox.in_background()
                    later.append(partial(plugin_registry.release, detached, wait=wait))
                del self._registered[name]
                self.legacy.plugin_names.discard(name)
                self._config_versions.pop(name, None)
        # Then the legacy brokers: after the plugins that leave (a legacy broker coming back
        # under a plugin's name, on a switch to 'legacy' or 'alongside', must not be
        # unregistered as that plugin), before the plugins that arrive (disabled legacy
        # brokers, or all in 'plugins' mode, leave first so a plugin may take the name).
        self.legacy.apply(legacy or {}, mode, set(self._registered))
        arrived: list[str] = []
        for name, cand in wanted.items():
            if name in self._registered:
                version = active[name].config_version
                if self._config_versions.get(name) != version:
                    self._config_versions[name] = version
                    later.append(partial(self._config_changed, name))
                continue
            assert cand.manifest is not None
            is_broker = cand.manifest.type == "broker"
            if is_broker and registry.is_registered(name):
                logger.warning(
                    "plugin %s not registered: a legacy broker of that name exists", name
                )
                continue
            plugin_registry.register(cand)
            if is_broker:
                self.legacy.plugin_names.add(name)
                register_broker(cand)
            self._types[name] = cand.manifest.type
            self._registered[name] = _identity(cand, active[name].revision)
            self._config_versions[name] = active[name].config_version
            arrived.append(name)
        return arrived, later

    def config_pushed(self, name: str, version: int) -> None:
        """A pushed change made config ``version`` of ``name`` live: hand it to the plugin
        now, with no wait for the refresh that follows (which finds it done). Versions only
        go up (a later one is never superseded by an earlier one, ``config.apply``), so an
        older or repeated note is ignored; the version read is the live one, whatever the
        note says."""
        with self._lock:
            if name not in self._registered or self._config_versions.get(name, 0) >= version:
                return
            self._config_versions[name] = version
        self._config_changed(name)

    def _config_changed(self, name: str) -> None:
        """A new config version is live: hand it to the loaded plugin on its lane (unless
        this process already did, when applying it); a plugin that refuses it there is
        unloaded and re-initialised."""
        from stonks_overwatch.core.factory import BrokerFactory

        BrokerFactory().clear_cache(name)
        _start_afresh(name)
        if name in self._hook_done:
            self._hook_done.discard(name)
            return
        loaded = plugin_registry.peek(name)
        if loaded is None or loaded.sandbox is None:
            return
        data = loads.config_for(name)  # read here: the lane thread never reads the database
        try:
            running = lanes.lane(name).start(
                "config_change", reconfigure, name, data, revalidate=False
            )
        except SandboxError as err:
            logger.warning("plugin %s: %s; unloading it to re-initialise", name, err)
            retire(name)
            return
        with self._settle:
            self._handovers = [h for h in self._handovers if not h.done.is_set()]
            self._handovers.append(running.pending)
        if not outbox.in_background():
            # No background runtime (CLI, tests, a task): finish it before going on.
            try:
                running.wait(budget.deadline(), budget.limit())
            except SandboxError as err:
                logger.warning("plugin %s: %s", name, err)

    def serving(self, plugin_type: str) -> list[str]:
        """Plugins of a type this process serves now (after a cheap freshness check)."""
        self.refresh()
        return sorted(n for n, t in self._types.items() if t == plugin_type)

    def note_config_applied(self, name: str) -> None:
        """The apply task already ran the plugin's hook in this process."""
        self._hook_done.add(name)

    def config_source(self, name: str) -> dict[str, Any] | None:
        """Effective config of a plugin this process serves (the BrokerFactory asks)."""
        if name not in self._registered and name not in self.legacy.wrapped():
            return None
        return config_system.effective_flat(name)

    def reset(self) -> None:
        """Drop everything this process registered (tests, safe mode)."""
        with self._lock:
            for name in list(self._registered):
                if self._types.get(name, "broker") == "broker":
                    unregister_broker(name)
                plugin_registry.unregister(name)
            self._registered.clear()
            self.legacy.plugin_names.clear()
            self._config_versions.clear()
            self._types.clear()
            self._hook_done.clear()
            with self._settle:
                self._handovers.clear()
            self.failing = frozenset()
            self.legacy.restore()
            self.invalidate()
        generation.bump()
        loads.forget()
        _start_afresh()


def _start_afresh(name: str | None = None) -> None:
    """The plugin's code or config is new (None: every plugin's): its earlier answers are
    not shown for it, nor does what its earlier calls showed (slow, failing, crashing its
    child) keep the pages from calling it."""
    lastgood.forget(name)
    lanes.start_afresh(name)
    repeats.forget(name)


def take_config(loaded: LoadedPlugin, data: dict[str, Any] | None) -> None:
    """Build the plugin's new config once and hand it to its hook; raises when the plugin
    refuses it (run on the plugin's lane)."""
    box = loaded.sandbox
    assert box is not None
    config = make_config(box, loaded.config_class, data)
    if loaded.instance is not None:
        accepted = box.run("config_change", loaded.instance.on_config_change, config)
        if accepted is False:
            warn_false_return(loaded.name, "on_config_change")
            raise ValueError("on_config_change() returned False")
    loaded.config = config
    generation.bump()


def reconfigure(name: str, data: dict[str, Any] | None) -> None:
    """A config that went live elsewhere: take it, or unload to re-initialise with it."""
    loaded = plugin_registry.peek(name)
    if loaded is None or loaded.sandbox is None:
        return
    try:
        take_config(loaded, data)
    except Exception as exc:  # re-initialise from scratch instead
        logger.warning(
            "plugin %s could not take its new config in place (%s); unloading it to re-initialise",
            name,
            exc,
        )
        plugin_registry.unload(name)


def check_config(name: str, data: dict[str, Any]) -> None:
    """The apply task's check: the plugin's loaded code here takes the new config, or the
    raised error says why it refuses it (``config.apply`` then keeps the previous one)."""
    if plugin_registry.peek(name) is None:
        # Not loaded here (yet): is it served here? A loaded one is checked as it is (a
        # change elsewhere that stops serving it is read after this one commits).
        serving.refresh(force=True)
    if name not in plugin_registry.known():
        return  # not served in this process (disabled, ...): schema-checked only
    loaded = loads.acquire(name)
    running = lanes.lane(name).start("config_change", take_config, loaded, data, revalidate=False)
    running.wait(budget.deadline(), budget.limit())
    serving.note_config_applied(name)
    _start_afresh(name)


def retire(name: str) -> None:
    """Unload a plugin that stays registered (it is loaded again, with its new config); its
    shutdown runs on a background thread when this process has the background runtime."""
    loads.forget(name)
    _start_afresh(name)
    plugin_registry.unload(name, wait=not outbox.in_background())


def load_serving(plugin_type: str) -> list[tuple[str, Any]]:
    """Loaded instances of the plugins of a type served here, each waited for within the
    caller's deadline; one that is not ready is left out (its load reports why)."""
    names = serving.serving(plugin_type)
    for name in names:
        loads.begin(name)
    out = []
    for name in names:
        try:
            out.append((name, loads.acquire(name)))
        except SandboxError:
            continue
    return out


def _identity(cand: Candidate, revision: int) -> str:
    """What makes a registration stale: other manifest contents, another folder or package,
    or a reload (the row's revision)."""
    return f"{cand.fingerprint}|{cand.location}|{revision}"


def _rows() -> tuple[dict[str, Serving], dict[str, LegacyRow]]:
    """Plugins this process should serve: active ones, and ones in a failure that may
    pass (retried with backoff in the background) - for a process-isolated plugin that
    includes a crash of its child, which is restarted; and the legacy brokers' rows. One
    query: it is read in every process at each change, all at once."""
    legacy = Q(source=Source.LEGACY.value)
    served = (Q(state=PluginState.ACTIVE.value) | may_recover()) & Q(enabled=True, missing=False)
    live_config = PluginConfig.objects.filter(plugin=OuterRef("pk"), is_active=True).values(
        "version"
    )[:1]
    rows = (
        Plugin.objects.filter(legacy | served)
        .annotate(config_version=Subquery(live_config))
        .values_list("name", "source", "enabled", "state", "missing", "revision", "config_version")
    )
    failing = PluginState.ERROR.value
    plugins: dict[str, Serving] = {}
    legacies: dict[str, LegacyRow] = {}
    for name, source, enabled, state, missing, rev, cv in rows:
        if source == Source.LEGACY.value:
            legacies[name] = LegacyRow.of(enabled, state, missing, rev, cv)
        else:
            plugins[name] = Serving(rev, cv or 0, state == failing)
    return plugins, legacies


serving = ServingSet()
"""This process's serving set (one per process, like the registry)."""
