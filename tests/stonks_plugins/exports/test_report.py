"""The import report: every row exactly once, the shape the host shows, and parse_rows, which
gives each data row its outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stonks_plugins.exports import (
    BadNumber,
    ImportReport,
    IncompleteReport,
    Outcome,
    RowError,
    Skip,
    parse_decimal,
    parse_rows,
    read_csv,
    record,
)
from tests.conftest import ROOT


def test_the_invariant_holds_only_when_every_row_has_one_outcome() -> None:
    report = ImportReport()
    report.skipped("a.csv", 1, "header")
    report.understood("a.csv", 2)
    report.reported("a.csv", 3, "bad_number", "not a number: 'x'", "2025-01-01,x")
    assert report.check("a.csv", 3) is None
    assert report.check("a.csv", 4) == (
        "a.csv: 4 row(s), but 3 have an outcome (understood 1, skipped 1, reported 1)"
    )
    with pytest.raises(IncompleteReport, match=r"^a\.csv: 4 row\(s\)"):
        report.require_complete("a.csv", 4)
    report.understood("a.csv", 4)
    assert report.complete
    report.understood("a.csv", 2)  # a row counted twice is a problem, never merged away
    assert report.check("a.csv") == "a.csv: line(s) 2 recorded more than once"
    assert not report.complete
    assert report.as_dict()["complete"] is False


def test_a_file_without_a_known_row_count_is_not_complete() -> None:
    report = ImportReport()
    report.understood("a.csv", 2)
    assert report.check("a.csv") is None
    assert report.complete is False


def test_the_shape_the_host_shows() -> None:
    report = ImportReport()
    report.skipped("Account.csv", 1, "header")
    for line in range(2, 603):
        report.reported("Account.csv", line, "unknown_description", f"row {line}", "x" * 500)
    report.skipped("Account.csv", 603, "reservation_pair", "the +/- pair of a reservation")
    report.understood("Portfolio.csv", 2)
    report.skipped("Portfolio.csv", 1, "header")
    report.expect("Account.csv", 603)
    report.expect("Portfolio.csv", 2)
    shown = report.as_dict()
    json.dumps(shown)  # JSON-ready
    assert shown["files"] == {
        "Account.csv": {
            "rows": 603,
            "understood": 0,
            "skipped": {"header": 1, "reservation_pair": 1},
            "reported": 601,
        },
        "Portfolio.csv": {"rows": 2, "understood": 1, "skipped": {"header": 1}, "reported": 0},
    }
    assert len(shown["reported"]) == 500 and shown["truncated"] == 101
    assert shown["reported"][0] == {
        "file": "Account.csv",
        "line": 2,
        "outcome": "reported",
        "rule": "unknown_description",
        "reason": "row 2",
        "text": "x" * 199 + "…",
    }
    assert shown["complete"] is True
    assert report.counts() == {"understood": 1, "skipped": 3, "reported": 601}
    assert report.counts("Portfolio.csv") == {"understood": 1, "skipped": 1, "reported": 0}
    assert len(report) == 601 and [o.line for o in report][:2] == [2, 3]
    assert report.summary(shown=2) == (
        "601 row(s) reported: Account.csv line 2: row 2; Account.csv line 3: row 3 (and 599 more)"
    )
    assert ImportReport().summary() == ""


def test_reports_of_several_files_merge() -> None:
    one, two = ImportReport(), ImportReport()
    one.understood("a.csv", 1)
    one.expect("a.csv", 1)
    two.skipped("b.csv", 1, "blank")
    two.expect("b.csv", 1)
    merged = ImportReport.merged([one, two])
    assert merged.files() == ["a.csv", "b.csv"] and merged.complete
    assert merged.rows_seen("b.csv") == 1


def test_parse_rows_gives_every_data_row_one_outcome(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(
        "Type,Amount,Status\n"
        "buy,10,Completed\n"
        "\n"
        "buy,1,Pending\n"
        "swap,5,Completed\n"
        "buy,ten,Completed\n"
        "notice,0,Completed\n"
    )
    table = read_csv(path)

    def parse(row):  # type: ignore[no-untyped-def]
        kind, amount, status = row.get(0), parse_decimal(row.get(1)), row.get(2)
        if status == "Pending":
            return Skip("pending_order", "not filled yet")
        if kind != "buy":
            if amount:
                raise RowError(f"unknown Type {kind!r}", rule="unknown_type")
            return Skip("no_money")
        return (kind, amount)

    report = ImportReport()
    parsed = parse_rows(table, parse, report)
    assert [(p.row.line, p.value) for p in parsed] == [(2, ("buy", 10))]
    assert [(o.line, o.outcome, o.rule) for o in report.outcomes("h.csv")] == [
        (1, Outcome.SKIPPED, "header"),
        (2, Outcome.UNDERSTOOD, ""),
        (3, Outcome.SKIPPED, "blank"),
        (4, Outcome.SKIPPED, "pending_order"),
        (5, Outcome.REPORTED, "unknown_type"),
        (6, Outcome.REPORTED, "bad_number"),
        (7, Outcome.SKIPPED, "no_money"),
    ]
    assert report.outcome_of("h.csv", 6).text == "buy,ten,Completed"  # type: ignore[union-attr]
    assert report.check("h.csv") is None and report.complete


def test_deciding_later(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("A\n1\n2\n3\n")
    table = read_csv(path)
    report = ImportReport()
    parsed = parse_rows(table, lambda row: row.get(0), report, understood=False)
    assert (
        report.check("h.csv")
        == "h.csv: 4 row(s), but 1 have an outcome (understood 0, skipped 1, reported 0)"
    )
    record(report, "h.csv", parsed[0].row, "anything")
    record(report, "h.csv", parsed[1].row, Skip("fx_leg", "the other half of a conversion"))
    record(report, "h.csv", parsed[2].row, BadNumber("not a number: '3'"))
    assert report.counts() == {"understood": 1, "skipped": 2, "reported": 1}
    assert report.check("h.csv") is None


def test_the_toolkit_imports_nothing_of_django_or_the_host() -> None:
    """A process-isolated plugin's child has no Django: the toolkit must work there."""
    code = (
        "import json, sys, stonks_plugins.exports as e; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'stonks_overwatch', 'rest_framework') or m.startswith('stonks_plugins.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    modules = json.loads(out)
    # The error family's base (stonks_plugins.errors, with the masking it uses) is plain
    # Python too: the export errors derive from it.
    shared = {"stonks_plugins.errors", "stonks_plugins.redaction"}
    assert modules and all(
        m.startswith("stonks_plugins.exports") or m in shared for m in modules
    ), modules
