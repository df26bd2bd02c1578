"""gunicorn's settings for Stonks Overwatch, read from the working directory (the image's
/app, or a checkout) unless ``-c`` names another file. The command line still chooses the
address and the number of workers.

Only the bookkeeping of /metrics' multiprocess mode lives here (see
``stonks_plugins/monitoring/multiproc.py``); both hooks do nothing without
``PROMETHEUS_MULTIPROC_DIR``. They import no Django: they run in the master.
"""

from __future__ import annotations

from typing import Any


def on_starting(server: Any) -> None:
    """Metric files left by this host's processes of an earlier start are not summed."""
    from stonks_plugins.monitoring.multiproc import sweep_dead

    sweep_dead()


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended (restarted, killed, timed out): its circuit gauges leave /metrics;
    its counters stay in the sums, so they never go down."""
    from stonks_plugins.monitoring.multiproc import mark_process_dead

    mark_process_dead(worker.pid)
