"""The serving runtime: what a process serves, and how a request reaches plugin code without
ever waiting on it longer than the page budget.

- :mod:`.serving`   which plugins this process serves, kept in line with the database;
- :mod:`.loads`     loading plugins on background threads, waited for within a deadline;
- :mod:`.lanes`     each plugin's calls on its own worker threads, with a cap per plugin;
- :mod:`.calls`     the service wrapper every broker call from the core goes through;
- :mod:`.budget`    the request's deadline, and what the page must tell about stale data;
- :mod:`.lastgood`  each call's last good answer, shown (with its age) when a call misses;
- :mod:`.outbox`    database writes found on plugin threads, written off the request path;
- :mod:`.background` the per-process thread: warm-up, retries with backoff, the outbox;
- :mod:`.push`      changes pushed over Redis pub/sub, waking that thread (the poll stays);
- :mod:`.middleware` the Django middleware that gives each request its budget;
- :mod:`.heap`      a warm process's start-up objects frozen out of the collector's way.

This package imports nothing at its top so that any of its modules can be imported alone.
"""
