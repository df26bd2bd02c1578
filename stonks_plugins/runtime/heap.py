"""A serving process's start-up heap, kept out of the cyclic garbage collector's way.

A web worker's start - Django, the URL configuration, every plugin's code, the warm-up page -
leaves over 10^5 objects that live as long as the process. Python's oldest-generation
collection walks every one of them each time it runs, in the middle of whichever page
happened to trigger it: 60-140 ms on the 2-vCPU development VM with the fault corpus
installed (``benchmarks/bench_page.py``: the slowest page of each worker). Frozen once the
process is warm (``gc.freeze``, right after a full collection, so no garbage is frozen), they
are never walked again: a later collection walks only what came since.

Called once a process has started and warmed up, before it takes requests (``wsgi.py``);
under ``gunicorn --preload`` that is the master, whose frozen objects the workers inherit
(also sparing their copy-on-write pages the collector's writes).
"""

from __future__ import annotations

import gc


def freeze_start() -> int:
    """Collect once, then move every object that survives into the permanent generation;
    returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
