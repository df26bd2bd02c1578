"""The kit's ``lifecycle`` test: load, use, health-check and unload the plugin several times
through the real registry and sandbox, as an operator's enable/disable/upgrade would.

Each cycle's faults are collected by kind and reported once per kind, so one leaking thread
does not turn into one failed check per cycle.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from stonks_overwatch.core.service_types import ServiceType

from .. import loader
from ..discovery.candidate import Candidate, Source
from ..errors import PluginError, ReasonCode
from ..health import Health, HealthStatus
from ..registry import LoadedPlugin
from .conformance import interface_methods, returns_nothing
from .results import TestResult
from .service_checks import FAULTS, fault_message
from .support import FAILED, PluginUnderTest, kind_of, timed
from .versions import contract_for

_KINDS = ("load", "services", "health", "unload", "modules", "threads")

_HINTS = {
    "load": "import and initialize() must succeed every time the plugin is loaded",
    "services": "every service method must work after each (re)load",
    "health": "health_check() must return a stonks_plugins.sdk.HealthStatus that is "
    "not unhealthy with the kit's config",
    "unload": "create threads, files and connections through self.context "
    "(start_thread, open, track) and let threads stop when "
    "self.context.stop_event is set; shutdown() must close the rest",
    "modules": "the host could not forget the plugin's modules: import your own "
    "modules relatively (from .x import y) and do not register them elsewhere",
    "threads": "threads started outside self.context outlive the unload: start them "
    "with self.context.start_thread(...) and watch self.context.stop_event",
}


def check_lifecycle(kit: PluginUnderTest, cycles: int = 3) -> TestResult:
    result = TestResult("lifecycle", kit.safe_name())
    with timed(result):
        cand = kit.usable(result)
        if cand is None:
            return result
        problems: dict[str, list[str]] = {k: [] for k in _KINDS}
        load_ms: list[float] = []
        health: list[str] = []
        stale: list[str] = []
        previous: dict[ServiceType, type] = {}
        registry = kit.registry()
        registry.register(cand)
        known_threads = set(threading.enumerate())
        done = 0
        try:
            for cycle in range(1, cycles + 1):
                tag = f"cycle {cycle}/{cycles}"
                start = time.perf_counter()
                try:
                    loaded = registry.load(cand.name)
                except PluginError as err:
                    problems["load"].append(f"{tag}: {err.code.value}: {err.message}")
                    registry.unload(cand.name)
                    break
                load_ms.append((time.perf_counter() - start) * 1000)
                problems["services"] += [f"{tag}: {p}" for p in _exercise(kit, loaded)]
                verdict = _health(loaded, kit.timeouts)
                if verdict.startswith("!"):
                    problems["health"].append(f"{tag}: {verdict[1:]}")
                else:
                    health.append(verdict)
                if loaded.host is None:  # a process-isolated plugin is fresh each load
                    for stype, cls in loaded.services.items():
                        if previous.get(stype) is cls:
                            stale.append(f"{tag}: {stype.value} service class {cls.__name__}")
                    previous = dict(loaded.services)
                del loaded
                report = registry.unload(cand.name)
                if report is None:
                    problems["unload"].append(f"{tag}: the registry had nothing to unload")
                    reported: list[str] = []
                else:
                    reported = list(report.threads)
                    if not report.ok:
                        leaks = [f"thread '{t}' still running" for t in report.threads]
                        leaks += [f"cleanup failed: {e}" for e in report.errors]
                        problems["unload"].append(f"{tag}: {'; '.join(leaks)}")
                left = plugin_modules(cand)
                if left:
                    shown = ", ".join(left[:5]) + (" ..." if len(left) > 5 else "")
                    problems["modules"].append(f"{tag}: still in sys.modules: {shown}")
                stray = _stray_threads(known_threads, reported)
                if stray:
                    problems["threads"].append(f"{tag}: {', '.join(stray)}")
                known_threads = set(threading.enumerate())
                done = cycle
        finally:
            registry.clear()
        _record(result, problems, cycles, done, load_ms, health, stale)
    return result


def plugin_modules(cand: Candidate) -> list[str]:
    """Modules of the plugin's own code currently in ``sys.modules``."""
    if cand.source is Source.DIRECTORY:
        prefix = loader.package_prefix(cand.name)
        return sorted(m for m in list(sys.modules) if m == prefix or m.startswith(prefix + "."))
    top = loader.split_ref(cand.entry_point or "")[0].split(".", 1)[0]
    if not top:
        return []
    return sorted(m for m in list(sys.modules) if m == top or m.startswith(top + "."))


def _record(
    result: TestResult,
    problems: dict[str, list[str]],
    cycles: int,
    done: int,
    load_ms: list[float],
    health: list[str],
    stale: list[str],
) -> None:
    """One check per kind of fault, over all the cycles that ran."""
    timing = ", ".join(f"{ms:.1f}" for ms in load_ms)
    summary = {
        "load": f"loaded and initialised {len(load_ms)} times ({timing} ms)",
        "services": "every service method answered after each load",
        "health": "; ".join(dict.fromkeys(health)) or "no plugin class: nothing to check",
        "unload": "nothing leaked",
        "modules": "released from sys.modules after each unload",
        "threads": "no thread outlived an unload",
    }
    for key, found in problems.items():
        name = f"lifecycle.{key}"
        if found:
            result.fail(name, f"{'; '.join(found)} — {_HINTS[key]}")
        elif done:
            result.ok(name, summary[key])
    if stale:
        result.fail(
            "lifecycle.reimport",
            f"{'; '.join(stale)} is the same object after the reload: the plugin's code "
            "was not imported afresh (is a copy of the package installed, or imported by "
            "its absolute name?)",
        )
    elif done > 1:
        result.ok("lifecycle.reimport", "each reload ran the code afresh")
    if done < cycles and not problems["load"]:
        result.fail("lifecycle.cycles", f"only {done} of {cycles} cycles ran")


def _exercise(kit: PluginUnderTest, loaded: LoadedPlugin) -> list[str]:
    """Call every service method once; the failures, one line each."""
    scratch = TestResult("lifecycle", loaded.name)
    config = kit.build_config(scratch, loaded)
    if config is FAILED:
        return [c.message for c in scratch.failures]
    problems = []
    for stype in loaded.services:
        service = kit.create_service(scratch, "create", loaded, stype, config)
        if service is FAILED:
            problems.append(f"{stype.value}: {scratch.failures[-1].message}")
            continue
        contract = contract_for(stype, loaded.services[stype])
        for method, hint in interface_methods(contract.interface):
            if returns_nothing(hint):
                continue
            try:
                getattr(service, method)()
            except FAULTS as err:
                problems.append(f"{stype.value}.{method}() raised {fault_message(err)}")
    return problems


def _health(loaded: LoadedPlugin, timeouts: dict[str, float | None]) -> str:
    """The health verdict as text; a problem starts with ``!``."""
    try:
        if loaded.host is not None:  # isolation: process; the check runs in the child
            status: Any = loaded.host.health_check(timeouts.get("health_check"))
        elif loaded.instance is None or loaded.sandbox is None:
            return "no plugin class: the host reports it healthy"
        else:
            status = loaded.sandbox.run("health_check", loaded.instance.health_check)
    except FAULTS as err:
        return f"!health_check() failed: {_fault_text(err)}"
    if not isinstance(status, HealthStatus):
        return f"!health_check() returned {kind_of(status)}, expected HealthStatus"
    if status.status is Health.UNHEALTHY:
        return f"!health_check() reported unhealthy: {status.message}"
    return f"health {status.status.value}" + (f": {status.message}" if status.message else "")


def _fault_text(err: Exception) -> str:
    code = getattr(err, "code", None)
    text = fault_message(err)
    return f"{code.value}: {text}" if isinstance(code, ReasonCode) else text


def _stray_threads(
    known: set[threading.Thread], reported: list[str], grace: float = 1.0
) -> list[str]:
    """New threads still alive after an unload, other than those the leak report named.
    Bounded-call workers end right after their call: they get ``grace`` seconds."""
    deadline = time.monotonic() + grace
    current = threading.current_thread()
    stray = []
    for thread in threading.enumerate():
        if thread in known or thread is current or _reported(thread.name, reported):
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            stray.append(f"thread '{thread.name}' still running")
    return stray


def _reported(name: str, reported: list[str]) -> bool:
    """Named by the leak report (abandoned calls appear as 'NAME (abandoned ...)')."""
    return any(r == name or r.startswith(name + " (") for r in reported)
