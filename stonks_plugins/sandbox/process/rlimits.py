"""The resource limits a plugin's child puts itself under.

A hog's allocation fails with ``MemoryError`` inside the child, which reports it and exits
(its state after a failed allocation cannot be trusted); one the kernel's OOM killer gets
first is reported as SIGKILL. ``RLIMIT_CPU`` is a lifetime counter in the kernel, so the child
re-arms it before every request: ``cpu_seconds`` is a budget *per call*, and a busy,
long-lived plugin is not killed for its total. A CPU hog dies of SIGXCPU.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time

from .wire import Limits


def apply(limits: Limits) -> None:
    """Put this process under ``limits`` (``0``: none)."""
    if limits.memory_mb > 0:
        _lower(memory_resource(), limits.memory_mb * 2**20)
    arm_cpu(limits.cpu_seconds)


def memory_resource() -> int:
    """The rlimit that bounds a plugin's memory: ``RLIMIT_DATA`` on Linux >= 4.7, else
    ``RLIMIT_AS``.

    ``RLIMIT_AS`` counts address space: thread stacks and glibc's malloc arenas are reserved
    in it, so a plugin using a thread pool would fail under a modest limit for no real reason.
    Since Linux 4.7 ``RLIMIT_DATA`` counts private writable mappings (heap, anonymous
    ``mmap``), i.e. memory the plugin can actually fill, and still stops a hog with
    ``MemoryError`` just short of the limit. Older kernels only applied it to ``brk``, which
    misses Python's large blocks.
    """
    if sys.platform.startswith("linux"):
        try:
            major, minor = (int(x) for x in os.uname().release.split(".")[:2])
        except ValueError:
            major, minor = 0, 0
        if (major, minor) >= (4, 7):
            return resource.RLIMIT_DATA
    return resource.RLIMIT_AS


def _lower(which: int, value: int) -> None:
    """Lower soft and hard limit to ``value`` (never above the inherited hard limit)."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


_cpu_soft_limit: int | None = None  # the soft RLIMIT_CPU last set by arm_cpu


def arm_cpu(cpu_seconds: int) -> None:
    """Allow ``cpu_seconds`` more CPU time from now: SIGXCPU (which kills) beyond that.

    The hard limit is left alone so the soft limit can be raised again before the next call.
    The limit is whole seconds, so it only moves once a full CPU second has been used: the
    common case costs one ``clock_gettime``, not two ``*rlimit`` syscalls.
    """
    global _cpu_soft_limit
    if cpu_seconds <= 0:
        return
    soft = math.ceil(time.process_time()) + cpu_seconds
    if soft == _cpu_soft_limit:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    _cpu_soft_limit = soft
