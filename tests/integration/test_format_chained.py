"""Clearing the stored-format mark buys no leniency: the chain itself must show a first release.

Verify grants a journal of the first releases (no mark) leniency for the tombstones and refusal
rows those releases left without a record in the chain. The mark is a plain column
(``chain_head.format``) that whoever can write the database can set back to none, so the chain
must say it too: a live exchange event only a first release can have written (its data sealed
as they sealed it, or its row digest of their 32 bytes), and only tombstones before the last such
event are taken for theirs (``replay/audit.py``). Live events are in the signed chain, which no
one without the key can extend or alter. Run on SQLite and PostgreSQL with the same SQL; the
in-memory journal keeps no mark, and its verify grants no leniency.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from federation.cli.main import main
from federation.domain.errors import JournalUnavailable
from replay import rows
from replay.memory import InMemoryJournal
from tests.integration.pg import SQLiteFile, Store
from tests.integration.test_tamper_refusals import forge
from tests.integration.test_tamper_tombstones import (
    NOW,
    _first_digest,
    erase,
    filled,
    tick,
    traffic,
    verify,
    written,
)

ADDED = "refusal 0: is not in the chain: it was added outside tongban"


def _second_digest(row: rows.Row) -> bytes:
    """A row digest as generation 2 recorded it (a marking release): 16 bytes, fewer columns."""
    return rows._digest(b"tongban/shown/1", (row[k] for k in rows.SHOWN_1))[: rows.SHOWN_BYTES]


async def test_a_cleared_mark_does_not_pass_an_erasure_off(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal a marking release wrote with no full row digest in its chain (digests of
    generation 2), an exchange erased by tombstoning and the mark set back to none: the erasure
    is named, not taken for a first release's archive."""
    monkeypatch.setattr(rows, "shown_digest", _second_digest)
    ids = await filled(where)
    monkeypatch.undo()
    await erase(where, ids[0])
    await where.execute("UPDATE chain_head SET format = NULL")
    assert "no record of archiving" in str(await verify(where))


async def test_a_cleared_mark_does_not_pass_a_forged_refusal_off(
    where: Store, tmp_path: Path
) -> None:
    """Every exchange archived (so no full row digest is left live), a refusal recorded, a row
    numbered below it added by SQL and the mark cleared: the row is named."""

    async def archived(j: Any) -> None:
        await traffic(j, 0, 3)
        assert (await j.archive(older_than=NOW + 100, out=tmp_path / "a.gz"))[0] == 3

    await written(where, archived)
    assert await verify(where) is None
    await forge(where, 0)
    await where.execute("UPDATE chain_head SET format = NULL")
    assert await verify(where) == ADDED


async def test_a_journal_of_the_first_releases_still_verifies(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows with the first releases' 32-byte digests, no mark: an exchange archived with no
    record and a refusal row with none still verify; once a marking release has written to it,
    both are named."""
    monkeypatch.setattr(rows, "shown_digest", _first_digest)
    ids = await filled(where)
    monkeypatch.undo()
    await erase(where, ids[0])  # as a first release archived: no ~archived record
    await forge(where, 0)  # as a first release refused: no ~refusal record
    await where.execute("UPDATE chain_head SET format = NULL")
    assert await verify(where) is None
    await where.execute("UPDATE chain_head SET format = ?", 2)
    assert "no record of archiving" in str(await verify(where))


async def test_leniency_ends_at_the_first_releases_last_event(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgraded journal (the first releases' exchanges, then a marking release's with no full
    digest), the mark cleared: a first release's exchange archived with no record passes, an
    exchange written after the first releases' last event erased so does not."""
    monkeypatch.setattr(rows, "shown_digest", _first_digest)
    old = await filled(where, 2)
    monkeypatch.setattr(rows, "shown_digest", _second_digest)

    async def later(j: Any) -> None:
        new.extend(await traffic(j, 10, 2))

    new: list[str] = []
    await written(where, later)
    monkeypatch.undo()
    await where.execute("UPDATE chain_head SET format = NULL")
    await erase(where, old[0])
    assert await verify(where) is None
    await erase(where, new[0])
    assert "no record of archiving" in str(await verify(where))


async def test_a_mark_that_is_not_a_whole_number_is_refused_at_open(tmp_path: Path) -> None:
    """SQLite keeps any value in any column: text in the mark is refused at open with a message
    that names the column, not the value, and `tongban journal verify` says it without a
    traceback."""
    where = SQLiteFile(tmp_path / "journal.sqlite")
    await filled(where, 1)
    await where.execute("UPDATE chain_head SET format = ?", "x9z")
    j = where.journal()
    with pytest.raises(JournalUnavailable) as refused:
        await j.open()
    message = str(refused.value)
    assert "stored-format mark (chain_head.format) is not a whole number" in message
    assert "x9z" not in message
    run = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["--lang", "en", "journal", "verify", "--journal", str(where.path)],
    )
    assert run.exit_code not in (0, None)
    assert run.exception is None or isinstance(run.exception, SystemExit)
    assert "not a whole number" in run.output and "Traceback" not in run.output
    assert "x9z" not in run.output


async def test_memory_journal_verifies_without_leniency() -> None:
    """The in-memory journal has no mark to clear; its verify grants the first releases'
    leniency to nothing: tombstones without a record are named."""
    j = InMemoryJournal(clock=tick)
    await j.open()
    try:
        ids = await traffic(j, 0, 2)
        assert (await j.verify())[1] is None
        for stored in j._chain:  # what an erasure leaves: tombstones, no record
            if stored.event.exchange_id == ids[0]:
                stored.archived, stored.data, stored.state = True, b"", None
        del j.exchanges[ids[0]]
        assert "no record of archiving" in str((await j.verify())[1])
    finally:
        await j.close()
