"""Opening exports as users have them: BOM, Latin-1, semicolons, blank lines, quoted cells
over several lines, rows broken over two lines, files that cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from stonks_plugins.exports import (
    BadEncoding,
    BadFile,
    Continuation,
    EmptyFile,
    MissingFile,
    Outcome,
    read_csv,
)


def _file(tmp_path: Path, data: bytes, name: str = "Account.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_bom_blank_lines_and_line_numbers(tmp_path: Path) -> None:
    path = _file(
        tmp_path, b'\xef\xbb\xbfDate,Note\r\n\r\n2025-01-01,"two\r\nlines"\r\n2025-01-02,x\r\n'
    )
    table = read_csv(path)
    assert table.header == ("Date", "Note")  # no BOM in the first name
    assert table.encoding == "utf-8"
    assert [(row.line, row.cells) for row in table.rows] == [
        (3, ("2025-01-01", "two\r\nlines")),
        (5, ("2025-01-02", "x")),  # where it starts in an editor
    ]
    assert [(o.line, o.outcome, o.rule) for o in table.outcomes] == [
        (1, Outcome.SKIPPED, "header"),
        (2, Outcome.SKIPPED, "blank"),
    ]
    assert table.total_rows == 4


def test_latin1_falls_back_and_a_named_encoding_is_strict(tmp_path: Path) -> None:
    path = _file(tmp_path, "Produkt;Börse\nMüller & Söhne (AG);XETRA\n".encode("iso-8859-1"))
    table = read_csv(path)
    assert (table.encoding, table.delimiter) == ("iso-8859-1", ";")
    assert table.header == ("Produkt", "Börse")
    assert table.rows[0].cells == ("Müller & Söhne (AG)", "XETRA")
    with pytest.raises(
        BadEncoding, match=r"^Account\.csv: not utf-8 text \(byte 9: invalid start byte\); name"
    ):
        read_csv(path, encoding="utf-8")
    with pytest.raises(BadEncoding, match="unknown encoding 'klingon'"):
        read_csv(path, encoding="klingon")


def test_a_row_broken_over_two_lines_is_joined(tmp_path: Path) -> None:
    """DeGiro wraps a long Description or Order Id onto a line that starts with commas."""
    lines = [
        "Datum,Tijd,Valutadatum,Product,ISIN,Omschrijving,FX,Mutatie,,Saldo,,Order Id",
        '28-12-2020,14:36,28-12-2020,EXAMPLE TECH,US0000000001,"Koop 1 @ 33,9",,USD,"-33,90",'
        'USD,"12,00",0a1b2c3d-1111-',
        ",,,,,USD (US0000000001),,,,,,4222-8333-444455556666",
        '27-12-2020,10:00,27-12-2020,,,iDEAL Deposit,,EUR,"500,00",EUR,"500,00",',
    ]
    path = _file(tmp_path, ("\n".join(lines) + "\n").encode())
    table = read_csv(path, continuation=Continuation(glue_by_column={11: ""}))
    first, second = table.rows
    assert (first.line, first.joined) == (2, (3,))
    assert first.get(5) == "Koop 1 @ 33,9 USD (US0000000001)"
    assert first.get(11) == "0a1b2c3d-1111-4222-8333-444455556666"
    assert second.line == 4
    assert table.total_rows == 3  # the header and two rows; the broken row counts once
    unrepaired = read_csv(path)
    assert len(unrepaired.rows) == 3


def test_a_continuation_with_nothing_above_is_reported(tmp_path: Path) -> None:
    path = _file(tmp_path, b"Date,Time,Note\n,,orphan\n2025-01-01,10:00,x\n")
    table = read_csv(path, continuation=Continuation())
    (orphan,) = [o for o in table.outcomes if o.outcome is Outcome.REPORTED]
    assert (orphan.line, orphan.rule, orphan.text) == (2, "orphan_continuation", ",,orphan")
    assert [row.line for row in table.rows] == [3]


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(MissingFile, match="file not found"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(EmptyFile, match=r"^empty\.csv: the file is empty"):
        read_csv(_file(tmp_path, b"\n\n", "empty.csv"))
    with pytest.raises(BadFile, match=r"^folder: is a folder"):
        (tmp_path / "folder").mkdir()
        read_csv(tmp_path / "folder")
    with pytest.raises(BadFile, match=r"^huge\.csv line 2: field larger than field limit"):
        read_csv(_file(tmp_path, b"a,b\nx," + b"y" * 200_000 + b"\n", "huge.csv"))
