"""Background monitoring: what Celery beat (or, on the embedded default, an in-process
scheduler) runs while nobody is looking: health checks of active plugins, retries of plugins
whose failure may pass, pruning of old history and flushing of metrics.

One concern per module: :mod:`.jobs` (health checks and retries), :mod:`.prune` (retention),
:mod:`.schedule` (the one table of what runs how often) and :mod:`.embedded` (that table run
by a thread when there is no beat process). The Celery tasks in ``stonks_plugins.tasks`` are
thin wrappers over the jobs, so beat and the embedded scheduler run exactly the same code.

Alerts tell operators when a plugin fails, turns unhealthy or recovers: :mod:`.alerts` (what
alerts, de-duplication and rate limit, wording), :mod:`.delivery` (mail and webhooks) and
:mod:`.notify` (the triggers, and the thread that sends without anyone waiting).

``/metrics`` (Prometheus): :mod:`.prometheus` (the folded call counters, the collectors, the
scrape), :mod:`.plugin_values` (plugins' own ``get_metrics()`` within the budget),
:mod:`.scrape_access` (loopback or bearer token) and :mod:`.multiproc` (the files of
prometheus-client's multiprocess mode, Django-free for gunicorn's master).
"""
