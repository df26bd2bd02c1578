"""Loading plugins off the request path.

A load attempt runs on its own thread (its plugin code bounded by the boundary's import and
initialize limits); whoever needs the plugin waits for the attempt at most until its
deadline and is told "still starting" otherwise - the attempt goes on. At most one attempt
per plugin runs at a time. The caller reads the plugin's config (it may be the only thread
that sees the database, inside a test's transaction) and hands it over; the attempt itself
never writes: what its failure changes is posted to the :mod:`.outbox`.

Who starts attempts: in a process with the background runtime (``start()``), only the
warmer - at start, when the served set changes, and for retries with backoff and jitter -
so a user's request never starts or retries a load, it only waits (within the budget) for
one that is running. Without it (the test client, the CLI, a task) the first caller starts
the attempt on a background thread and waits within its own deadline.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

from django.db import connections

from .. import generation, store
from ..errors import OPERATOR_CODES, PluginError, ReasonCode
from ..registry import LoadedPlugin, NotRegistered, plugin_registry
from ..sandbox import SandboxError
from ..sandbox.timeouts import Pending
from . import budget, outbox, repeats
from .threads import in_plugin_thread, plugin_thread

logger = logging.getLogger(__name__)

_attempts: dict[str, Pending] = {}
_started: dict[str, float] = {}
_overdue: set[str] = set()
"""Plugins whose running attempt a caller already waited for in vain: later callers do not
wait for it again (a load that hangs would otherwise cost every request its budget)."""
_lock = threading.Lock()
_on_change: list[Any] = []
_last_codes: dict[str, ReasonCode] = {}
"""The reason code of each plugin's last failed load attempt (read by the warmer)."""
_failed: dict[str, Pending] = {}
"""Each plugin's last failed attempt while a retry of it runs: what a page is told meanwhile
(the background runtime owns the retry, and a retry of a load that hung would otherwise cost
the first page that meets it the whole budget)."""


def config_for(name: str) -> dict[str, Any] | None:
    provider = plugin_registry.hooks.config_provider
    return provider(name) if provider else None


def configs_for(name: str) -> dict[str, Any]:
    """The effective configs of a plugin and of the plugins it needs (loaded with it)."""
    out = {name: config_for(name)}
    candidate = plugin_registry.known().get(name)
    if candidate is not None and candidate.manifest is not None:
        for dep in candidate.manifest.plugin_dependencies:
            if plugin_registry.peek(dep) is None:
                out[dep] = config_for(dep)
    return out


_retry_configs: dict[str, tuple[int, dict[str, Any]]] = {}
"""Per plugin, the configs its last background retry read and the ``generation`` they were
read in."""


def configs_for_retry(name: str) -> dict[str, Any]:
    """The configs of a background retry: read again only once this process has taken in a
    change (``generation``). Reading them is about half of what a load that fails as before
    costs the host (1.4-3 ms of ORM, beside a page), and nothing else makes them differ: a
    config applied anywhere is announced, and the runtime's refresh that takes it in comes
    before the retries of its round. The generation is read before the configs, so a change
    taken in meanwhile is read by the next retry."""
    seen = generation.current
    kept = _retry_configs.get(name)
    if kept is not None and kept[0] == seen:
        return copy.deepcopy(kept[1])  # the plugin's config hooks may keep or change theirs
    data = configs_for(name)
    _retry_configs[name] = (seen, copy.deepcopy(data))
    return data


def running(name: str) -> bool:
    attempt = _attempts.get(name)
    return attempt is not None and not attempt.done.is_set()


def begin(name: str, retry: bool = False) -> Pending | None:
    """Start loading ``name`` in the background unless it is loaded or already starting.
    Returns the attempt to wait on (None when the plugin is loaded). The configs are read
    here, in the caller's thread; a plugin thread leaves that to the load itself.

    After a failed attempt, a new one starts only when its backoff is over, and - in a
    process with the background runtime - only when the runtime asks (``retry``): a user's
    request never retries a load there."""
    if plugin_registry.peek(name) is not None:
        return None
    with _lock:
        attempt = _attempts.get(name)
        if attempt is not None and not attempt.done.is_set():
            return attempt
    if attempt is not None and (
        (outbox.in_background() and not retry) or plugin_registry.load_failure(name)[1] > 0
    ):
        return attempt  # failed; the background runtime retries it after its backoff
    if in_plugin_thread():
        data = None
    elif retry and outbox.in_background():
        data = configs_for_retry(name)
    else:
        data = configs_for(name)
    with _lock:
        attempt = _attempts.get(name)
        if attempt is not None and not attempt.done.is_set():
            return attempt
        if attempt is not None and attempt.error is not None:
            _failed[name] = attempt
        attempt = Pending.start(
            plugin_thread(_attempt),
            (name, data),
            name=f"plugin:{name}:load",
            on_exit=connections.close_all,
        )
        _attempts[name] = attempt
        _started[name] = time.monotonic()
        _overdue.discard(name)
    return attempt


def _attempt(name: str, configs: dict[str, Any] | None) -> LoadedPlugin:
    try:
        with repeats.loading(name):
            loaded = plugin_registry.load(name, configs=configs)
        _last_codes.pop(name, None)
        _failed.pop(name, None)
        repeats.forget(name)
    except NotRegistered:
        raise  # withdrawn by a change made elsewhere meanwhile: nothing to record
    except SandboxError as err:
        if err.code is not ReasonCode.CIRCUIT_OPEN:  # a refused retry is no news
            _last_codes[name] = err.code
            _post_failure(err)
        raise
    except PluginError as err:
        _last_codes[name] = err.code
        _post_failure(err)
        raise SandboxError(err.plugin, err.code, "load", err.message) from err
    finally:
        for hook in list(_on_change):
            hook(name)
    return loaded


def _post_failure(err: PluginError) -> None:
    if not repeats.first_time("state", err):
        logger.debug("plugin %s still fails to load, as before: %s", err.plugin, err)
        return
    logger.warning("plugin %s failed to load: %s", err.plugin, err)
    outbox.post(f"the failed load of plugin {err.plugin}", lambda: store.mark_failed(err))


def needs_operator(name: str) -> bool:
    """Did the plugin's last load fail for a reason only an operator can fix
    (``errors.OPERATOR_CODES``)? Such a load is not retried in the background."""
    return _last_codes.get(name) in OPERATOR_CODES


def on_attempt_end(hook: Any) -> None:
    """``hook(name)`` after each attempt (the warmer schedules retries from it)."""
    if hook not in _on_change:
        _on_change.append(hook)


def known_failure(name: str) -> SandboxError | None:
    """Why a caller need not wait for the plugin at all, where the background runtime owns
    its loads: its last load failed (also while a retry of it runs), or its first load is
    still running and a caller already waited for it in vain (``None`` when it is loaded,
    loading for the first time, or this process loads on demand). Cheap: a page asks it of
    every plugin before handing it a call, so such a plugin costs the page no hop to its
    lane."""
    attempt = _attempts.get(name)
    if attempt is None or not outbox.in_background() or plugin_registry.peek(name) is not None:
        return None
    retrying = not attempt.done.is_set()
    if retrying:
        failed = _failed.get(name)
        if failed is None:
            return _still_starting(name) if name in _overdue else None
        attempt = failed
    if attempt.error is None:
        return None
    _, retry_in = plugin_registry.load_failure(name)
    error = attempt.error
    if isinstance(error, SandboxError) and error.code is not ReasonCode.CIRCUIT_OPEN:
        when = "being retried now" if retrying else f"next attempt in {retry_in:.0f} s"
        return SandboxError(
            name,
            error.code,
            "load",
            f"{error.message} ({when})",
            retry_in=0.0 if retrying else retry_in,
        )
    return SandboxError(
        name,
        ReasonCode.CIRCUIT_OPEN,
        "load",
        f"not loaded; next attempt in {retry_in:.0f} s",
        retry_in=retry_in,
    )


def _still_starting(name: str) -> SandboxError:
    age = time.monotonic() - _started.get(name, time.monotonic())
    return SandboxError(
        name,
        ReasonCode.TIMEOUT,
        "load",
        f"still starting after {age:.0f} s (loading goes on in the background)",
    )


def acquire(name: str) -> LoadedPlugin:
    """The plugin's loaded code, waiting for it at most until the caller's deadline."""
    hit = plugin_registry.peek(name)
    if hit is not None:
        return hit
    attempt = _attempts.get(name)
    if attempt is None or attempt.done.is_set():
        if outbox.in_background() and attempt is not None:
            # The warmer owns retries: say why the plugin is not there and when it is retried.
            failed = known_failure(name)
            if failed is not None:
                raise failed
            _, retry_in = plugin_registry.load_failure(name)
            raise SandboxError(
                name,
                ReasonCode.CIRCUIT_OPEN,
                "load",
                f"not loaded; next attempt in {retry_in:.0f} s",
                retry_in=retry_in,
            )
        attempt = begin(name)
        if attempt is None:
            loaded = plugin_registry.peek(name)
            if loaded is not None:
                return loaded
            raise SandboxError(name, ReasonCode.IMPORT_ERROR, "load", "is not loaded")
    failed = known_failure(name)
    if failed is not None:
        raise failed  # a retry runs, or a caller already waited for this load in vain
    wait = 0.0 if name in _overdue else max(0.0, budget.deadline() - time.monotonic())
    finished = attempt.done.wait(wait)
    outbox.settle()
    if not finished:
        _overdue.add(name)
        raise _still_starting(name)
    result: LoadedPlugin = attempt.result()
    return result


def wait_all(
    names: list[str], timeout: float, retry: bool = False
) -> dict[str, BaseException | None]:
    """Start every load and wait for all of them together at most ``timeout`` seconds
    (``plugins sync``, a background retry): the outcome of each, a TIMEOUT error for those
    still starting."""
    attempts = {n: begin(n, retry=retry) for n in names}
    end = time.monotonic() + timeout
    out: dict[str, BaseException | None] = {}
    for name, attempt in attempts.items():
        if attempt is None:
            out[name] = None
            continue
        if not attempt.done.wait(max(0.0, end - time.monotonic())):
            out[name] = SandboxError(
                name,
                ReasonCode.TIMEOUT,
                "load",
                f"did not import and initialise within {timeout:g} s",
            )
            continue
        out[name] = attempt.error
    return out


def forget(name: str | None = None) -> None:
    """Forget the plugin's attempts (None: every plugin's), and the failures they reported:
    after an operator's enable or reload, its next failure is reported in full."""
    repeats.forget(name)
    with _lock:
        if name is None:
            _attempts.clear()
            _overdue.clear()
            _last_codes.clear()
            _failed.clear()
            _retry_configs.clear()
        else:
            _attempts.pop(name, None)
            _overdue.discard(name)
            _last_codes.pop(name, None)
            _failed.pop(name, None)
            _retry_configs.pop(name, None)
