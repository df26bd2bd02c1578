"""The rows a sync works on, read cheaply: as stored values, locked, with only the columns
it decides on; a model instance is built only for a row the sync changes. Also what a
discovered plugin's row should hold.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, cast

from django.db import router
from django.db.models import BooleanField, ExpressionWrapper, Q

from .config.system import config_system, env_overrides
from .discovery import Candidate
from .django_apps import APP_KEY
from .manifest.model import PluginManifest
from .models import Plugin


def row_fields(
    cand: Candidate, m: PluginManifest | None, stored_hash: str | None = None
) -> dict[str, Any]:
    """The row's fields for ``cand``, whose manifest is ``m``. ``manifest`` (the parsed
    file) is left out when the file is the one whose hash is ``stored_hash``: it is stored
    already, and parsing every plugin's file at every sync would cost more than the rest."""
    raw_plugin: dict[str, Any] = {}
    if m is None:
        raw = cand.raw
        found = raw.get("plugin", {}) if isinstance(raw, dict) else {}
        raw_plugin = found if isinstance(found, dict) else {}

    def text(key: str) -> str:
        value = raw_plugin.get(key, "")
        return value if isinstance(value, str) else ""

    fields: dict[str, Any] = {
        "declared_name": m.name if m else cand.name.split("@", 1)[0],
        "version": m.version if m else text("version")[:64],
        "type": m.type
        if m
        else (
            text("type") if text("type") in ("broker", "aggregator", "view", "middleware") else ""
        ),
        "source": cand.source.value,
        "location": cand.location,
        "display_name": m.display_name if m else text("display_name")[:200],
        "description": m.plugin.description if m else text("description"),
        "manifest_hash": cand.fingerprint,
        "warnings": list(cand.warnings),
        "missing": False,
    }
    if stored_hash is None or stored_hash != fields["manifest_hash"]:
        fields["manifest"] = cand.raw if isinstance(cand.raw, dict) else {}
    return fields


RECONCILED = (
    "name",
    "enabled",
    "state",
    "error_code",
    "error_message",
    "requires",
    "declared_name",
    "version",
    "type",
    "source",
    "location",
    "display_name",
    "description",
    "manifest_hash",
    "warnings",
    "missing",
    "trust",
)
"""The columns a sync compares and decides on; it only assigns the others it writes."""


COLUMNS = tuple(  # in the model's order, as Model.from_db takes them
    f.attname for f in Plugin._meta.concrete_fields if f.attname in {"id", *RECONCILED}
)


def locked_rows(
    only: Collection[str] | None, locked: Collection[Plugin] = ()
) -> dict[str, dict[str, Any]]:
    """The rows to reconcile, locked, by name, as their stored values: a model instance is
    built only for a row the sync changes (building one for every row would cost more
    than the rest of a sync that changes nothing). Each also says whether its stored manifest
    declares a Django app. Only the columns a sync reads are loaded: the manifest is most
    of a row, and is rewritten only when its file changed. Rows in ``locked`` are not read
    again: their values are taken from them."""
    rows: dict[str, dict[str, Any]] = {}
    for row in locked:
        rows[row.name] = {c: getattr(row, c) for c in COLUMNS}
        rows[row.name].update(declares_app=APP_KEY in row.manifest, _row=row)
    if only is not None and not set(only) - rows.keys():
        return rows
    declares_app = ExpressionWrapper(Q(manifest__has_key=APP_KEY), output_field=BooleanField())
    query = (
        Plugin.objects.select_for_update()
        .annotate(declares_app=declares_app)
        .values_list(*COLUMNS, "declares_app")
        .order_by()
    )
    if only is not None:
        query = query.filter(name__in=sorted(set(only) - rows.keys()))
    elif rows:
        query = query.exclude(name__in=sorted(rows))
    keys = (*COLUMNS, "declares_app")
    for values in query:
        stored = dict(zip(keys, values, strict=True))
        rows[stored["name"]] = stored
    return rows


def build(stored: dict[str, Any]) -> Plugin:
    """The model instance of a row read by :func:`locked_rows`, as a query would build it
    (the columns not read are deferred); the caller's own for a row it holds."""
    held = stored.get("_row")
    if held is not None:
        return cast(Plugin, held)
    db = router.db_for_write(Plugin)
    row = Plugin.from_db(db, list(COLUMNS), [stored[c] for c in COLUMNS])
    row.declares_app = stored["declares_app"]  # type: ignore[attr-defined]
    return row


def insert_later(row: Plugin) -> bool:
    """Whether a new row may be inserted when the sync's writes are made (in the state the
    sync leaves it in: one INSERT, no UPDATE): it has no stored config, so with none in the
    settings or the environment either, its events are masked without a look at the
    database; the others are inserted at once (the config system reads their rows to find
    their secrets)."""
    return not (config_system.base_settings(row.name) or env_overrides(row.name))
