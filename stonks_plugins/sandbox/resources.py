"""What a plugin creates through its :class:`PluginContext`, and releasing it on unload.

Unloading a plugin (disable, reload) must not leave its threads polling a broker, its files
open or its connections holding a pool slot — a reload would otherwise double them every time.
Python offers no way to find "everything a module created", so the plugin is handed a context
and creates long-lived things through it: ``start_thread``, ``open``, ``track`` (any object
with a ``close``, or with an explicit closer) and ``add_cleanup``. On unload ``release()``:

1. sets ``stop_event`` first, so threads blocked in ``stop_event.wait(...)`` wake up while the
   rest is being closed;
2. runs cleanups and closes tracked resources in reverse order of registration (like
   :class:`contextlib.ExitStack`: what was opened last may depend on what was opened first);
   an exception there is collected, never raised — one bad cleanup must not skip the others;
3. joins the threads, sharing one ``join_timeout`` deadline between them (ten stuck threads
   cost one timeout, not ten), and reports any still alive as leaked.

A released context refuses new work (``RuntimeError``): code still running from the unloaded
plugin must not create resources nobody will release.
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

from ..logs.capture import plugin_logger

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class LeakReport:
    """The result of releasing a plugin's resources."""

    threads: list[str] = field(default_factory=list)
    """Names of threads still alive after the join deadline (leaked)."""
    errors: list[str] = field(default_factory=list)
    """One line per cleanup or close that raised."""
    released: int = 0
    """Cleanups run, resources closed and threads joined without trouble."""

    @property
    def ok(self) -> bool:
        return not self.threads and not self.errors

    def merge(self, other: LeakReport) -> LeakReport:
        return LeakReport(
            self.threads + other.threads, self.errors + other.errors, self.released + other.released
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "threads": list(self.threads),
            "errors": list(self.errors),
            "released": self.released,
        }


@dataclass
class _Entry:
    kind: str
    label: str
    close: Callable[[], object]
    resource: Any = None


class PluginContext:
    """Creates and tracks one plugin's threads, files, connections and cleanups."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin
        self.stop_event = threading.Event()
        """Set when the plugin is being released; long-running threads should watch it."""
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._threads: list[threading.Thread] = []
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    @property
    def logger(self) -> logging.Logger:
        """The plugin's logger: its records are kept with the plugin (console, API, CLI) and
        still reach the host's log."""
        return plugin_logger(self.plugin)

    # -- creating ----------------------------------------------------------------------------

    def start_thread(
        self,
        target: Callable[..., object],
        *args: Any,
        name: str | None = None,
        daemon: bool = True,
        **kwargs: Any,
    ) -> threading.Thread:
        """Start a tracked thread. Its exceptions are logged with the plugin's name (and a
        ``sys.exit`` in it just ends it) instead of going to the global excepthook."""
        label = name or f"plugin:{self.plugin}:{getattr(target, '__name__', 'thread')}"

        def run() -> None:
            try:
                target(*args, **kwargs)
            except SystemExit:
                pass
            except Exception:
                logger.exception("thread %s of plugin %s raised", label, self.plugin)

        thread = threading.Thread(target=run, name=label, daemon=daemon)
        with self._lock:
            self._check_open()
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    def open(self, path: str | os.PathLike[str], mode: str = "r", **kwargs: Any) -> IO[Any]:
        """``open()`` whose file is closed on release if the plugin has not closed it."""
        self._check_open()
        handle: IO[Any] = builtins.open(path, mode, **kwargs)  # noqa: SIM115 - outlives this call
        try:
            self._add(_Entry("file", os.fspath(path), handle.close, handle))
        except BaseException:
            handle.close()
            raise
        return handle

    def track(
        self, resource: T, close: Callable[[], object] | None = None, kind: str = "resource"
    ) -> T:
        """Register anything to close on release (a DB or HTTP connection, a pool, a client);
        ``close`` defaults to ``resource.close``. Returns ``resource`` for chaining."""
        closer = close if close is not None else getattr(resource, "close", None)
        if not callable(closer):
            raise TypeError(
                f"plugin '{self.plugin}': cannot track {type(resource).__name__}: it has no "
                "close() method; pass close=..."
            )
        self._add(_Entry(kind, type(resource).__name__, closer, resource))
        return resource

    def untrack(self, resource: object) -> bool:
        """Forget a resource the plugin closed itself (keeps long-lived contexts small)."""
        with self._lock:
            for i, entry in enumerate(self._entries):
                if entry.resource is resource:
                    del self._entries[i]
                    return True
        return False

    def add_cleanup(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` on release (in reverse order of registration, with the resources)."""
        self._add(_Entry("cleanup", getattr(fn, "__qualname__", repr(fn)), fn))

    # -- reading -----------------------------------------------------------------------------

    def threads(self) -> list[threading.Thread]:
        with self._lock:
            return [t for t in self._threads if t.is_alive()]

    def tracked(self) -> list[str]:
        """``"kind label"`` for everything that release() would close or run."""
        with self._lock:
            return [f"{e.kind} {e.label}" for e in self._entries]

    # -- releasing ---------------------------------------------------------------------------

    def release(self, join_timeout: float = 2.0) -> LeakReport:
        """Stop, close and join everything; idempotent (a second call reports nothing)."""
        with self._lock:
            if self._released:
                return LeakReport()
            self._released = True
            entries, self._entries = self._entries, []
            threads, self._threads = self._threads, []
        report = LeakReport()
        self.stop_event.set()
        for entry in reversed(entries):
            try:
                entry.close()
            except (Exception, SystemExit) as exc:
                report.errors.append(
                    f"{entry.kind} {entry.label}: {type(exc).__name__}: {one_line(exc)}"
                )
            else:
                report.released += 1
        deadline = time.monotonic() + join_timeout
        current = threading.current_thread()
        for thread in threads:
            if thread is current or thread.ident is None:
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                report.threads.append(thread.name)
            else:
                report.released += 1
        if not report.ok:
            logger.warning("plugin %s released with leaks: %s", self.plugin, report.as_dict())
        return report

    # -- internals ---------------------------------------------------------------------------

    def _add(self, entry: _Entry) -> None:
        with self._lock:
            self._check_open()
            # Files the plugin already closed need no closing: keep the list bounded.
            self._entries = [
                e for e in self._entries if not (e.kind == "file" and e.resource.closed)
            ]
            self._entries.append(entry)

    def _check_open(self) -> None:
        if self._released:
            raise RuntimeError(
                f"plugin '{self.plugin}': its context was released (the plugin was unloaded); "
                "it may not create new threads or resources"
            )

    def __repr__(self) -> str:
        state = "released" if self._released else "open"
        return (
            f"<PluginContext {self.plugin} {state} threads={len(self._threads)} "
            f"tracked={len(self._entries)}>"
        )


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of ``str(exc)``, bounded; safe against a ``__str__`` that raises."""
    try:
        text = str(exc)
    except Exception:
        text = "<unprintable>"
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]
