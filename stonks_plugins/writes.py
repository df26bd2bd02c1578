"""The writes of many changes on plugin rows, made together (:func:`bulk`).

A sync reconciles every plugin's row: written one change at a time, that is several queries
per plugin (1,000 plugins: thousands of queries, seconds). Inside a :func:`bulk` block the
store's functions (:mod:`stonks_plugins.store`) gather their writes in a :class:`Batch`
instead, written when the block ends: the new rows in one INSERT, one UPDATE per kind of
change, the events in one INSERT, one bump of the generation. The number of queries then
depends on the kinds of change, not on the number of plugins.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.utils import timezone

from . import propagation
from .models import Plugin, PluginEvent
from .redaction import known_secrets, plugin_secrets, remember, scrub_text

_ROWS_PER_UPDATE = 1000
_ROWS_PER_INSERT = 1000
_EVENTS_PER_INSERT = 2000
"""PostgreSQL takes at most 65,535 parameters in a query (SQLite's own limit is applied
by Django)."""


class Batch:
    """The writes of many changes on plugin rows, made when a :func:`bulk` block ends: the
    new rows in one INSERT (in the state they reached), one UPDATE per kind of change (rows
    whose changed fields got the same values), the events in one INSERT, one generation
    bump. The secret values a plugin's text is masked with are read once per plugin, and a
    text is masked once per set of secrets (a sync writes the same reasons many times)."""

    def __init__(self) -> None:
        self.now = timezone.now()
        """The time of every state change in the block: changes made together are dated
        alike, so rows that reached the same state are written by one UPDATE."""
        self.rows: dict[int, tuple[Plugin, set[str]]] = {}
        self.new: list[Plugin] = []
        self.events: list[PluginEvent] = []
        self.bump = False
        self._secrets: dict[str, tuple[str, ...]] = {}
        self._masked: dict[tuple[str, tuple[str, ...]], str] = {}

    def save(self, row: Plugin, fields: Iterable[str]) -> None:
        self.rows.setdefault(id(row), (row, set()))[1].update(fields)

    def create(self, rows: Iterable[Plugin]) -> None:
        """Rows to insert when the block ends, with whatever they hold by then (their events
        may refer to them meanwhile). Nothing in the block may read them from the database,
        nor look up their secrets: see :meth:`no_stored_config`."""
        self.new.extend(rows)

    def secrets_of(self, name: str) -> tuple[str, ...]:
        found = self._secrets.get(name)
        if found is None:
            found = self._secrets[name] = plugin_secrets(name)
        return found

    def knows(self, name: str, values: Iterable[str]) -> None:
        """The secrets of ``name`` are ``values`` (its caller has just read them) and those
        this process knows already: no query."""
        remember(name, values)
        self._secrets[name] = known_secrets(name)

    def no_stored_config(self, names: Iterable[str]) -> None:
        """Plugins with no config stored, nor any in the settings or the environment (rows
        this sync creates): their secrets are those this process knows, no query needed."""
        for name in names:
            self._secrets[name] = known_secrets(name)

    def config_changed(self, name: str) -> None:
        """A config of ``name`` was stored in this block: read its secrets again."""
        self._secrets.pop(name, None)

    def mask_text(self, name: str, text: str) -> str:
        secrets = self.secrets_of(name)
        key = (text, secrets)
        masked = self._masked.get(key)
        if masked is None:
            masked = self._masked[key] = scrub_text(text, secrets)
        return masked

    def flush(self, events: bool = True, keep: Iterable[Plugin] = ()) -> None:
        """Write the rows (but those in ``keep``) and the events gathered so far: call it
        before reading changed rows back from the database."""
        if self.new:
            new, self.new = self.new, []
            insert(new)
            for row in new:  # inserted as they are now: nothing left to update
                self.rows.pop(id(row), None)
        kept = {id(row): self.rows[id(row)] for row in keep if id(row) in self.rows}
        if len(self.rows) > len(kept):
            _update(held for key, held in self.rows.items() if key not in kept)
            self.rows = kept
        if events and self.events:
            gathered, self.events = self.events, []
            PluginEvent.objects.bulk_create(gathered, batch_size=_EVENTS_PER_INSERT)


def insert(rows: list[Plugin]) -> None:
    """New rows in one INSERT (per 1,000), each with its id afterwards, even from a database
    that returns none (SQLite before 3.35)."""
    if not rows:
        return
    Plugin.objects.bulk_create(rows, batch_size=_ROWS_PER_INSERT)
    if any(row.pk is None for row in rows):
        names = [row.name for row in rows]
        ids = dict(Plugin.objects.filter(name__in=names).values_list("name", "pk"))
        for row in rows:
            row.pk = ids[row.name]


def _update(changed: Iterable[tuple[Plugin, set[str]]]) -> None:
    """One UPDATE for each set of rows whose changed fields got the same values (rows that
    reached the same state); one bulk UPDATE for the rest, per set of fields."""
    now = timezone.now()
    alike: dict[tuple[Any, ...], list[Plugin]] = {}
    for row, fields in changed:
        row.updated_at = now
        # A field never loaded (``only()``) was not assigned either: it did not change.
        names = tuple(sorted(({*fields} - row.get_deferred_fields()) | {"updated_at"}))
        alike.setdefault((names, *(_hashable(getattr(row, f)) for f in names)), []).append(row)
    single: dict[tuple[str, ...], list[Plugin]] = {}
    for key, rows in alike.items():
        names, first = key[0], rows[0]
        if len(rows) > 1:
            values = {f: getattr(first, f) for f in names}
            Plugin.objects.filter(pk__in=[r.pk for r in rows]).update(**values)
        else:
            single.setdefault(names, []).append(first)
    for names, rows in single.items():
        if len(rows) == 1:
            rows[0].save(update_fields=names)
        else:
            Plugin.objects.bulk_update(rows, names, batch_size=_ROWS_PER_UPDATE)


def _hashable(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


_UNREAD = object()
"""A field the stored row was read without: it differs from any value."""
_SEEN_PER_UPDATE = 5000


class RowUpsert:
    """Plugin rows brought in line with what a sync found, the one way for plugin rows
    (:mod:`stonks_plugins.sync`) and legacy broker rows (``legacy.adapter.sync_legacy``):
    the new rows inserted together, each stored row's changed fields assigned and saved
    (gathered by the :func:`bulk` block it runs in), and every row found unchanged stamped
    seen in one UPDATE (:meth:`finish`). The callers decide the fields and the events.

    ``later``: which new rows may be inserted when the block ends, in the state they reach
    meanwhile (those with no config stored for them in the block, whose secrets are then
    known without a query); the others are inserted at once and get their ids."""

    def __init__(
        self,
        *,
        now: datetime,
        enabled: bool,
        later: Callable[[Plugin], bool] | None = None,
    ) -> None:
        batch = current()
        assert batch is not None, "RowUpsert runs inside a writes.bulk() block"
        self.batch = batch
        self.now = now
        self.enabled = enabled
        self.later = later
        self._seen: list[int] = []

    def create(self, found: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Plugin]:
        """Rows for plugins seen for the first time (``name``, row fields), by name."""
        rows = [
            Plugin(name=name, enabled=self.enabled, last_seen_at=self.now, **fields)
            for name, fields in found
        ]
        wait = [row for row in rows if self.later(row)] if self.later is not None else []
        waiting = {id(row) for row in wait}
        insert([row for row in rows if id(row) not in waiting])
        self.batch.create(wait)
        self.batch.no_stored_config(row.name for row in wait)
        return {row.name: row for row in rows}

    @staticmethod
    def changes(stored: Mapping[str, Any] | Plugin, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The fields whose values differ from the stored row's: its values as read (a
        ``values()`` dict, in which a column not read differs from any value), or the row."""
        values = stored if isinstance(stored, Mapping) else vars(stored)
        return {k: v for k, v in fields.items() if values.get(k, _UNREAD) != v}

    def update(self, row: Plugin, changes: Mapping[str, Any]) -> None:
        """Assign ``changes`` to a row found again, and save them with its ``last_seen_at``."""
        row.last_seen_at = self.now
        for key, value in changes.items():
            setattr(row, key, value)
        self.batch.save(row, ["last_seen_at", *changes])

    def seen(self, row_id: int) -> None:
        """A row found again with nothing to change: stamped by :meth:`finish`."""
        self._seen.append(row_id)

    def finish(self) -> None:
        """``last_seen_at`` of every row :meth:`seen`, in one UPDATE (per 5,000 rows)."""
        ids, now = self._seen, self.now
        for start in range(0, len(ids), _SEEN_PER_UPDATE):
            Plugin.objects.filter(pk__in=ids[start : start + _SEEN_PER_UPDATE]).update(
                last_seen_at=now, updated_at=now
            )
        self._seen = []


_batch: ContextVar[Batch | None] = ContextVar("stonks_plugins_writes_batch", default=None)


def current() -> Batch | None:
    """The block this thread is in, if any."""
    return _batch.get()


@contextmanager
def bulk() -> Iterator[Batch]:
    """Gather the changes made inside (in this thread) and write them when the block ends;
    a nested block joins the outer one. Use it inside the transaction that makes the
    changes: on an exception nothing gathered is written, and that transaction rolls back."""
    batch = _batch.get()
    if batch is not None:
        yield batch
        return
    batch = Batch()
    token = _batch.set(batch)
    try:
        yield batch
        batch.flush()
        if batch.bump:
            propagation.bump()
    finally:
        _batch.reset(token)
