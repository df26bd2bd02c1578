"""No silent loss in bitvavo-broker and csv-broker: for every file of every fixture (the
samples they ship and the cases in tests/fixtures/exports/), rows = understood + skipped +
reported, each physical row exactly once.

The rows are counted here independently of the toolkit (one CSV record per row, blank lines
included), so a reader that drops a row cannot hide it by also not counting it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

from . import load_plugin

bv = load_plugin("bitvavo-broker", "bitvavo")
cb = load_plugin("csv-broker", "csvbroker")

FIXTURES = ROOT / "tests" / "fixtures" / "exports"


def _cases(broker: str, sample: Path) -> list[Any]:
    folders = [sample, *sorted(p for p in (FIXTURES / broker).iterdir() if p.is_dir())]
    return [pytest.param(folder, id=f"{broker}:{folder.name}") for folder in folders]


def _physical_rows(path: Path, delimiter: str) -> int:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    return sum(1 for _ in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _assert_every_row_once(shown: dict[str, Any], folder: Path, delimiter: str) -> None:
    files = sorted(p for p in folder.glob("*.csv"))
    assert sorted(shown["files"]) == [p.name for p in files]
    for path in files:
        counts = shown["files"][path.name]
        rows = _physical_rows(path, delimiter)
        accounted = counts["understood"] + sum(counts["skipped"].values()) + counts["reported"]
        assert (counts["rows"], accounted) == (rows, rows), (path.name, counts)
    assert shown["complete"] is True
    assert shown["truncated"] == 0


@pytest.mark.parametrize("folder", _cases("bitvavo", bv.services.SAMPLE_DATA_FOLDER))
def test_bitvavo_accounts_for_every_row(folder: Path) -> None:
    config = bv.config.BitvavoConfig(import_folder=str(folder))
    service = bv.services.PortfolioService(config=config)
    service.get_portfolio()
    _assert_every_row_once(service.import_report.as_dict(), folder, ",")


@pytest.mark.parametrize("folder", _cases("csv", cb.services.SAMPLE_DATA_FOLDER))
def test_csv_broker_accounts_for_every_row(folder: Path) -> None:
    settings_file = folder / "config.json"
    settings = json.loads(settings_file.read_text("utf-8")) if settings_file.exists() else {}
    config = cb.config.CsvBrokerConfig.from_dict({**settings, "import_folder": str(folder)})
    service = cb.services.PortfolioService(config=config)
    service.get_portfolio()
    _assert_every_row_once(service.import_report.as_dict(), folder, config.delimiter)


def test_the_awkward_bitvavo_rows_get_the_outcome_a_user_expects() -> None:
    folder = FIXTURES / "bitvavo" / "current"
    history = bv.exports.read_history(folder)
    outcomes = {
        o.line: (str(o.outcome), o.rule) for o in history.report.outcomes("transactions-2025.csv")
    }
    assert outcomes[1] == ("skipped", "header")
    assert outcomes[2] == ("skipped", "pending_order")
    assert outcomes[3] == ("reported", "unknown_type")  # swap: not applied
    assert outcomes[5] == ("skipped", "not_executed")  # Canceled
    assert outcomes[6] == ("skipped", "blank")
    assert {outcome for outcome, _ in outcomes.values()} == {"understood", "skipped", "reported"}
    assert sum(1 for outcome, _ in outcomes.values() if outcome == "understood") == 13
    assert "SOL" in {h.currency for h in bv.services.holdings(history.rows)[0]}
    (sol,) = [h for h in bv.services.holdings(history.rows)[0] if h.currency == "SOL"]
    assert str(sol.amount) == "1.5"  # the 3 SOL of the unknown swap are not in it
