"""A value of the wrong type written into a SQLite journal: verify names the row and the column.

SQLite keeps any value in any column (text in a BLOB or REAL column), so whoever can write the file
can leave values no tongban write produces. `tongban journal verify` reports each as tampering at
its event or at the chain head, never with a traceback (exit 1 is its answer "broken"), and never
quotes the value (it may be anything, personal data included). PostgreSQL's typed columns refuse
such values; the in-memory journal has no columns.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation.cli.main import main
from tests.integration.pg import SQLiteFile
from tests.integration.test_tamper_tombstones import delivered, tick

SECRET = "A123456(3)"  # a value verify must never print
CASES = [
    ("UPDATE events SET at = ? WHERE seq = 2", SECRET, "event 2 ", "its at is not a number"),
    ("UPDATE events SET hash = ? WHERE seq = 2", SECRET, "event 2 ", "its hash is not bytes"),
    ("UPDATE events SET hash = ? WHERE seq = 2", b"\x00" * 5, "event 2 ", "hash is not 32 bytes"),
    ("UPDATE events SET state = ? WHERE seq = 1", SECRET, "event 1 ", "its state is not bytes"),
    ("UPDATE events SET data = ? WHERE seq = 2", SECRET, "event 2 ", "its data is not bytes"),
    ("UPDATE events SET kind = ? WHERE seq = 2", b"\x07", "event 2 ", "its kind is not text"),
    ("UPDATE events SET archived = ? WHERE seq = 2", SECRET, "event 2 ", "archived mark is not"),
    ("UPDATE chain_head SET mac = ?", SECRET, "the chain head: ", "mac is not bytes"),
    ("UPDATE chain_head SET hash = ?", SECRET, "the chain head: ", "hash is not 32 bytes"),
    ("UPDATE chain_head SET seq = ?", SECRET, "the chain head: ", "seq is not a whole number"),
]
IDS = [
    "at",
    "hash-text",
    "hash-short",
    "state",
    "data",
    "kind",
    "archived",
    "head-mac",
    "head-hash",
    "head-seq",
]


async def journal(path: Path) -> SQLiteFile:
    """A SQLite journal of two delivered exchanges."""
    where = SQLiteFile(path)
    j = where.journal(clock=tick)
    await j.open()
    try:
        await delivered(j, 0)
        await delivered(j, 1)
    finally:
        await j.close()
    return where


@pytest.mark.parametrize(("sql", "value", "where", "reason"), CASES, ids=IDS)
async def test_a_malformed_value_is_named_without_a_traceback(
    tmp_path: Path, sql: str, value: object, where: str, reason: str
) -> None:
    """The journal API names the row and the column; the CLI says so as its "broken" answer."""
    store = await journal(tmp_path / "j.sqlite")
    with contextlib.closing(sqlite3.connect(store.path)) as conn, conn:
        conn.execute(sql, (value,))
    j = store.journal(clock=tick)
    await j.open()
    try:
        _, broken = await j.verify()
    finally:
        await j.close()
    assert broken is not None
    said = str(broken)
    assert said.startswith(where) and reason in said and "altered outside tongban" in said
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["journal", "verify", "--journal", str(store.path)]
    )
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert reason in result.output and "Traceback" not in result.output
    assert SECRET not in result.output


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE events SET kind = ? WHERE seq = 2",
        "UPDATE events SET exchange_id = ? WHERE seq = 2",
        "UPDATE exchanges SET id = ? WHERE id = (SELECT min(id) FROM exchanges)",
    ],
    ids=["kind", "event-exchange-id", "row-id"],
)
async def test_text_written_in_place_of_a_name_is_not_quoted(tmp_path: Path, sql: str) -> None:
    """A kind or an exchange id no tongban write makes (here an identity card number): verify
    names the event or the row by its number or length, not by the text written there."""
    store = await journal(tmp_path / "j.sqlite")
    with contextlib.closing(sqlite3.connect(store.path)) as conn, conn:
        conn.execute(sql, (SECRET,))
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["journal", "verify", "--journal", str(store.path)]
    )
    assert result.exit_code == 1, result.output
    assert "<10 characters, not shown>" in result.output
    assert SECRET not in result.output
