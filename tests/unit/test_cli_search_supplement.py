"""`tongban journal search` says which exchange a correction round's material (补正) is of: a
column in the table when a row is one, none otherwise, and the last column of its CSV."""

from __future__ import annotations

from typing import Any

import pytest

from federation.cli.render import CSV_COLUMNS, table


def row(xid: str, supplement_of: str | None, receipt: Any = None) -> dict[str, Any]:
    return {
        "id": xid,
        "supplement_of": supplement_of,
        "state": "delivered",
        "partner": "hk",
        "service": "TD-VL-RENEW",
        "source": "local",
        "attempts": 1,
        "created_at": "2026-12-07T10:00:00Z",
        "receipt_number": receipt,
        "last_error": None,
    }


def test_the_table_shows_what_a_round_supplements(capsys: pytest.CaptureFixture[str]) -> None:
    table([row("01CHILD", "01PARENT", "R-2"), row("01PARENT", None, "R-1")], None)
    out = capsys.readouterr().out
    heading = out.splitlines()[0]
    assert "supplement of" in heading
    child = next(line for line in out.splitlines() if line.startswith("01CHILD"))
    assert "01PARENT" in child and "R-2" in child


def test_no_column_when_no_row_is_a_round(capsys: pytest.CaptureFixture[str]) -> None:
    table([row("01PARENT", None, 12345)], None)  # a receipt number read as a number is shown
    out = capsys.readouterr().out
    assert "supplement of" not in out
    assert "12345" in out


def test_the_csv_has_the_column_last() -> None:
    assert CSV_COLUMNS[-1] == "supplement_of"
