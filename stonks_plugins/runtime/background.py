"""The background runtime of a serving process: one thread that keeps the process's plugins
warm and writes what plugin code's outcomes change.

Started once per process (and again after a fork) in web and worker processes - never by
``manage.py`` commands - it:

- refreshes the serving set as soon as a change is pushed to it (:mod:`.push`: Redis
  pub/sub, or a change committed in this process), and every ``PLUGINS_REFRESH_INTERVAL``
  seconds whatever the push says, so a change made elsewhere is loaded before any request
  asks for it, and a lost message only delays it to the next poll;
- loads every served plugin as soon as it is served (each load on its own thread: one
  plugin that hangs while loading never delays another), at start and on every change;
- retries a failed load after its backoff (exponential, with jitter - Home Assistant's
  setup retry), so no user's request ever starts or retries a load - unless it failed for a
  reason only the operator can fix (``auth_failed``, ``config_invalid``);
- writes the :mod:`.outbox` and flushes the metrics and the plugins' log records (also
  when the process exits), so the request path only reads;
- asks every broker for its portfolio once, as a page would, when plugins start being
  served: a broker that answers is then served at once, one that hangs is known not to be
  waited for - before a user's first page finds out for itself;
- runs the beat schedule in-process on the embedded default, where no beat exists.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import heapq
import logging
import math
import os
import queue
import random
import sys
import threading
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import close_old_connections, connections

from stonks_overwatch.core.aggregators import PortfolioAggregator

from .. import metrics_store, store
from ..conf import plugin_settings
from ..logs import store as log_store
from ..monitoring import multiproc
from ..monitoring.embedded import start_embedded_scheduler, stop_embedded_scheduler
from ..registry import plugin_registry
from ..sandbox import SandboxError
from ..sandbox.process import ProcessHost
from ..sandbox.timeouts import Pending
from . import budget, lanes, loads, outbox, push, quiet, reaper
from .serving import serving

logger = logging.getLogger(__name__)

TICK = 0.1  # seconds between two rounds of the loop when nothing is asked of it
SWITCH_INTERVAL = 0.001  # seconds a thread holds the GIL while another waits for it
SETTLE_POLL = 0.05  # seconds between two looks at a warming process's starting children
LAST_LOOK_SETTLE = 0.5  # seconds a starting worker waits for its last page's records
REVIVE_LEAD = 10.0  # seconds before a crashed plugin's next call that its child is restarted
SERVED_KEPT = 32  # pushed changes whose serving time a process remembers (diagnostics)
SETTLE_WAIT = 5.0  # seconds a change's hand-overs and loads are waited for, to note it

_rechecked: frozenset[str] = frozenset()
"""Brokers the last warm-up asked again (slow once): their second call is waited for before
the process takes requests (:func:`_warm_up_settle`). Replaced, never changed in place: the
process's start reads it while a later warm-up may set it."""


class Background:
    def __init__(self) -> None:
        self.pid: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pushed = threading.Event()
        self._pushed_at = 0.0
        self._configs: dict[str, int] = {}
        self._configs_lock = threading.Lock()
        self._asked: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._retries: list[tuple[float, str]] = []
        self._retry_at: dict[str, float] = {}
        self._warm_page = False
        self.warmed = threading.Event()
        """Set once the first warm-up page of this process is done (or there was none)."""
        self._heard = 0
        self._reviving: set[str] = set()
        self.caught_up = 0
        """The newest pushed generation a refresh has run for since it was heard: unless
        that refresh could not read the database (it logs why), this process serves every
        change committed up to it."""
        self._served: collections.deque[tuple[int, float]] = collections.deque(maxlen=SERVED_KEPT)
        self._served_lock = threading.Lock()
        self._unsettled: list[Pending] = []  # what earlier changes started, still running

    @property
    def running(self) -> bool:
        return self.pid == os.getpid() and self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start in this process (idempotent); False when warm-up is switched off."""
        if self.running:
            return True
        if not plugin_settings.WARMUP or plugin_settings.SAFE_MODE:
            return False
        self.pid = os.getpid()
        # A refresh on this thread gives up the GIL at each query, and would wait up to the
        # switch interval (5 ms by default) to get it back from a thread rendering a page:
        # several times per refresh, in every process, just when a change is pushed.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self._stop.clear()
        self._wake.clear()
        self._heard = self.caught_up = 0  # a new receiver hears generations afresh
        with self._served_lock:
            self._served.clear()
        self._unsettled = []
        self.warmed = threading.Event()
        outbox.background(True)
        serving.on_arrival(self._arrived)
        loads.on_attempt_end(self._attempt_ended)
        self._thread = threading.Thread(
            target=self._loop, name="stonks-plugins-runtime", daemon=True
        )
        self._thread.start()
        ProcessHost.background_restarts = True  # crashed children: restarted by this thread
        _flush_logs_at_exit()
        try:
            push.start(self._changed, self._configs_pushed)
        except Exception:  # the poll still works: a push that cannot start costs only speed
            logger.exception("plugin changes cannot be pushed to this process; polling")
        if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
            start_embedded_scheduler()  # no beat process exists on the embedded default
        logger.info("plugin runtime started in process %s", self.pid)
        return True

    def stop(self, timeout: float = 2.0) -> None:
        stop_embedded_scheduler()
        push.stop()
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        self.pid = None
        outbox.background(False)
        ProcessHost.background_restarts = False

    def after_fork(self) -> None:
        """A forked child has none of its parent's threads: start afresh when asked."""
        self._thread = None
        self.pid = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pushed = threading.Event()
        self._pushed_at = 0.0
        self._configs = {}
        self._configs_lock = threading.Lock()
        self._asked = queue.SimpleQueue()
        self._retries = []
        self._retry_at = {}
        self._warm_page = False
        self.warmed = threading.Event()
        self._heard = self.caught_up = 0
        self._served = collections.deque(maxlen=SERVED_KEPT)
        self._served_lock = threading.Lock()
        self._unsettled = []
        self._reviving = set()
        outbox.background(False)
        ProcessHost.background_restarts = False
        # What the parent served may have changed since it was read, and this process
        # hears of changes only once it subscribes: its first registry read looks again.
        serving.invalidate()

    # -- what others tell it ---------------------------------------------------------------
    def _changed(self, generation: int | None) -> None:
        """A change was pushed (on the push's thread: it only raises flags)."""
        if generation is not None:
            self._heard = max(self._heard, generation)
        serving.invalidate()  # a request before the next round refreshes too
        self._pushed_at = time.monotonic()
        self._pushed.set()
        self._wake.set()

    def _configs_pushed(self, configs: dict[str, int]) -> None:
        """Config versions a pushed change made live (on the push's thread: noted only)."""
        with self._configs_lock:
            for name, version in configs.items():
                self._configs[name] = max(version, self._configs.get(name, 0))

    def _take_configs(self) -> dict[str, int]:
        with self._configs_lock:
            configs, self._configs = self._configs, {}
        return configs

    def served(self) -> list[tuple[int, float]]:
        """The latest pushed changes this process serves: ``(generation, since)``, ``since``
        a ``time.monotonic()`` (system-wide on Linux) from which every change committed up to
        that generation was served here - its rows read, its config handed to the loaded
        plugin and the plugins it brought loaded (or failed). For diagnostics and the
        propagation benchmark; never a secret."""
        return list(self._served)

    def _note_served(self, heard: int, work: list[Pending]) -> None:
        # An earlier change's work still running holds this one back too: a generation
        # noted means every change up to it is served.
        running = [p for p in (*self._unsettled, *work) if not p.done.is_set()]
        self._unsettled = running
        if not running:
            self._record_served(heard)
            return
        Pending.start(self._settled, (heard, running), name="stonks-plugins-settle")

    def _settled(self, heard: int, work: list[Pending]) -> None:
        end = time.monotonic() + SETTLE_WAIT
        for pending in work:
            pending.done.wait(max(0.0, end - time.monotonic()))
        self._record_served(heard)

    def _record_served(self, heard: int) -> None:
        at = time.monotonic()
        with self._served_lock:
            if not self._served or heard > self._served[-1][0]:
                self._served.append((heard, at))

    def _arrived(self, names: list[str]) -> None:
        for name in names:
            self._asked.put(name)
        if names:
            self._warm_page = True

    def _attempt_ended(self, name: str) -> None:
        if plugin_registry.peek(name) is not None:
            self._retry_at.pop(name, None)
            if name in serving.failing:
                # Loaded here although its row is in a retryable error (it failed in
                # another process, or before this one started): it works, say so.
                outbox.post(f"the recovery of plugin {name}", lambda: _recovered(name))
            return
        if name not in plugin_registry.known():
            self._retry_at.pop(name, None)
            return
        failures, retry_in = plugin_registry.load_failure(name)
        if failures == 0:
            return
        if loads.needs_operator(name):
            # Credentials or config refused: retrying cannot help (and a refused password
            # retried may lock the account); the operator's change, enable or reload will.
            self._retry_at.pop(name, None)
            return
        jitter = float(plugin_settings.RETRY_JITTER)
        # Only ever later than the backoff (the load circuit refuses an earlier try), by up
        # to a fraction of it, so processes that failed together do not retry together.
        delay = max(retry_in, 0.05) * (1.0 + jitter * random.random())
        at = time.monotonic() + delay
        self._retry_at[name] = at
        heapq.heappush(self._retries, (at, name))

    # -- the loop -------------------------------------------------------------------------
    def _loop(self) -> None:
        last_refresh = -math.inf  # the first round refreshes, whatever the interval
        warming = False
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                pushed = self._pushed.is_set()
                if pushed or now - last_refresh >= float(plugin_settings.REFRESH_INTERVAL):
                    # Cleared before the refresh starts: a push that comes meanwhile is
                    # either read by this refresh or causes the next one.
                    self._pushed.clear()
                    heard = self._heard
                    pushed_at = self._pushed_at
                    last_refresh = now
                    # A new config goes to its plugin first - what the change is about,
                    # with no other read - then the refresh reads everything else.
                    for name, version in self._take_configs().items():
                        serving.config_pushed(name, version)
                    # A request thread may have read the rows since the push: once is enough.
                    serving.refresh(force=pushed, newer_than=pushed_at if pushed else None)
                    if pushed:
                        self.caught_up = max(self.caught_up, heard)
                # The rows read since the push (here, or by a request meanwhile): the
                # change is served once what it started here is done.
                settle = pushed and serving.read_at >= pushed_at
                handovers = serving.settling() if settle else []
                begun = self._begin_asked()
                if settle:
                    self._note_served(heard, [*handovers, *begun])
                if self._warm_page:
                    self._warm_page = False
                    warming = True
                    Pending.start(
                        _warm_page,
                        (begun,),
                        name="stonks-plugins-warm-page",
                        on_exit=self.warmed.set,
                    )
                elif not warming:
                    self.warmed.set()  # nothing to warm (no plugin served yet)
                reaper.sweep()
                # The rest waits for moments without a request (runtime.quiet), all of it
                # together no longer than quiet.WAIT: the next round's refresh is not held.
                pause = quiet.waiter()
                pause()
                self._begin_due(time.monotonic())
                self._revive_children()
                outbox.drain(pause=pause)
                pause()
                metrics_store.flush()
                log_store.flush()
                _fold_prometheus()
            except Exception:  # the loop must outlive anything a round meets
                logger.exception("plugin runtime round failed")
            finally:
                # Kept from one round to the next as settings say (``CONN_MAX_AGE``, 60 s on
                # PostgreSQL): a pushed change is then read at once, not after a new
                # connection; a broken or expired one is closed.
                close_old_connections()
            self._wake.wait(TICK)
            self._wake.clear()
        connections.close_all()

    def _revive_children(self) -> None:
        """Restart each crashed process-isolated child whose backoff is over, on a thread of
        its own (an interpreter takes a while to start, and a page never waits for one) -
        once a call will want it: a child whose calls the pages do not wait for (its plugin
        is slow, stuck or failing, :mod:`.lanes`) is restarted only ``REVIVE_LEAD`` seconds
        before its next background refresh. Restarted at once, a child that crashes on every
        call would take the CPU of an interpreter's start from the pages after each crash,
        only to sit unused until then."""
        for name in plugin_registry.known():
            loaded = plugin_registry.peek(name)
            host = loaded.host if loaded is not None else None
            if host is None or name in self._reviving or not host.revivable:
                continue
            if not lanes.called_within(name, REVIVE_LEAD):
                continue
            self._reviving.add(name)
            Pending.start(self._revive, (name, host), name=f"plugin:{name}:restart")

    def _revive(self, name: str, host: ProcessHost) -> None:
        try:
            host.revive()
        except Exception as exc:  # recorded by the host as a crash, tried after its backoff
            logger.info("the process of plugin %s did not restart: %s", name, exc)
        finally:
            self._reviving.discard(name)

    def _begin_asked(self) -> list[Pending]:
        """Start loading the plugins that arrived; returns the loads under way."""
        begun: list[Pending] = []
        while True:
            try:
                name = self._asked.get_nowait()
            except queue.Empty:
                return begun
            attempt = self._begin(name)
            if attempt is not None:
                begun.append(attempt)

    def _begin_due(self, now: float) -> None:
        while self._retries and self._retries[0][0] <= now:
            at, name = heapq.heappop(self._retries)
            if self._retry_at.get(name) != at:
                continue  # superseded by a later schedule, or loaded meanwhile
            del self._retry_at[name]
            self._begin(name)

    def _begin(self, name: str) -> Pending | None:
        if name not in plugin_registry.known() or plugin_registry.peek(name) is not None:
            return None
        try:
            return loads.begin(name, retry=True)
        except SandboxError as err:
            logger.warning("%s", err)
            return None


def _warm_page(loading: list[Pending] | None = None) -> None:
    """The portfolio of every broker, asked within a page's budget, as a first page would:
    loads are waited for, answers kept, and hanging brokers marked, for the users' pages.
    The loads its round began (``loading``) are waited for first, within the same budget
    (the page would wait for them anyway): asked meanwhile, the other brokers would take
    the CPU from those loads, and so from the change every process is taking in."""
    global _rechecked
    with _warming("warming the portfolio up"):
        with budget.page():
            for pending in loading or ():
                pending.done.wait(max(0.0, budget.deadline() - time.monotonic()))
            PortfolioAggregator().get_portfolio()
        again = lanes.recheck_unconfirmed()
        _rechecked = frozenset(again)
        if again:
            # Slow once (a busy start?): asked again now, behind a second page that starts
            # their calls - in the background, as for any slow broker. A starting process
            # waits for them before it takes requests (``_warm_up_settle``): not beside a
            # user's first pages, where an in-process plugin's work would take the
            # interpreter's lock.
            with budget.page():
                PortfolioAggregator().get_portfolio()


@contextlib.contextmanager
def _warming(what: str) -> Iterator[None]:
    """A warm-up step: what it meets is logged, never raised (a warm-up must not take the
    runtime, or the process's start, down), and it leaves no connection open - on a
    process's start (gunicorn --preload: its master, before it forks) none is handed down
    to the workers."""
    try:
        yield
    except Exception:
        logger.exception("%s failed", what)
    finally:
        connections.close_all()


def _fold_prometheus() -> None:
    """With PROMETHEUS_MULTIPROC_DIR, this process's plugin calls go to its metric files about
    once a second, for any process's scrape to sum (prometheus-client is imported only then:
    without it a scrape folds its own process, and a process nobody scrapes needs none)."""
    if multiproc.directory() is not None:
        from ..monitoring import prometheus

        prometheus.fold_if_due()


_exit_hooked = False


def _flush_logs_at_exit() -> None:
    """Store the plugins' last log records when the process ends, if its runtime still
    runs then (a runtime stopped on purpose - tests - has nothing to say at exit)."""
    global _exit_hooked
    if not _exit_hooked:
        _exit_hooked = True
        atexit.register(_at_exit)


def _at_exit() -> None:
    if background.running:
        log_store.flush_at_exit()


def _recovered(name: str) -> None:
    store.recover(name, "recovered: loaded by the background runtime")


background = Background()
os.register_at_fork(after_in_child=background.after_fork)


def ensure_started(ready_within: float = 0.0) -> None:
    """Cheap when running; starts the background runtime in a serving process. With
    ``ready_within``, waits up to that long for the process's first warm-up page and what
    it set going (:func:`_warm_up_settle`): a web worker that takes requests only once its
    plugins are warm never serves a user's page cold, nor beside its own start-up work (the
    wait is bounded like a page, and it is the process's start, not a request)."""
    if background.pid != os.getpid() and background.start() and ready_within > 0:
        until = time.monotonic() + ready_within
        background.warmed.wait(ready_within)
        _warm_up_settle(until)
        _last_look()


def _last_look() -> None:
    """A starting worker's own last page before it takes requests: what came due while it
    warmed up - the trial call of a plugin whose circuit the warm-up opened, the second
    call of a child the warm-up crashed - is made here, not on a user's first page (each
    failing call cost that page a few ms: its error, its log line, its record). Only the
    portfolio, within a page's budget; its records are written before requests come."""
    with _warming("the last warm-up page"), budget.page():
        PortfolioAggregator().get_portfolio()
    until = time.monotonic() + LAST_LOOK_SETTLE
    while outbox.pending() and time.monotonic() < until:
        time.sleep(SETTLE_POLL)


def _warm_up_settle(until: float) -> None:
    """Wait, until ``until`` at most, for what the warm-up set going that would otherwise
    share the CPU with the first pages: a process-isolated plugin's child still starting (an
    interpreter and the plugin's imports, a few tenths of a CPU second, seconds at idle
    priority while the process warms up), still running the warm-up's call (which may spin
    until the reaper stops it, crash, or fill its memory limit) or crashed by it and due for
    a restart before then; and the warm-up's records not yet written (the outbox: a failure
    event per faulty plugin); and the second call of a broker the warm-up asked again, in
    process too: it answered once, slowly, and its work beside a page would take the
    interpreter's lock from it (a broker reading 320 MiB held a first page 0.5 to 2 s when
    the warm-up page's budget ran out first on a busy start). Other in-process loads or
    calls that hang are not waited for: a sleeping thread takes no CPU."""
    isolated = [
        name
        for name, candidate in plugin_registry.known().items()
        if candidate.manifest is not None and candidate.manifest.isolation == "process"
    ]
    while time.monotonic() < until:
        busy = any(
            loads.running(name) or lanes.busy(name) or _restart_coming(name, until)
            for name in isolated
        ) or any(lanes.busy(name) for name in _rechecked)
        if not busy and not outbox.pending():
            return
        time.sleep(SETTLE_POLL)


def _restart_coming(name: str, until: float) -> bool:
    """Is the plugin's child, crashed by a warm-up call, to be restarted before ``until``
    (or being restarted)? The restart is the warm-up's work too."""
    loaded = plugin_registry.peek(name)
    host = loaded.host if loaded is not None else None
    wait = host.restart_in if host is not None else None
    if wait is None or time.monotonic() + wait >= until:
        return False
    return lanes.called_within(name, REVIVE_LEAD)
