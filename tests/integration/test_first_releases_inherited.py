"""A journal of the first releases still verifies once this release has written to it.

The first releases archived without ``~archived`` records and kept refusals without ``~refusal``
records. The transaction that first raises such a journal's stored-format mark appends an
``~inherited`` event saying what they left unrecorded then (``replay/inherited.py``); verify
accepts exactly that and names anything more. Run on SQLite and PostgreSQL with the same SQL; the
in-memory journal is never a first release's: it never writes the record, and one there is named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from federation.domain.models import Event
from replay import inherited, rows
from replay.journal import AuditEntry
from replay.memory import InMemoryJournal
from replay.postgres import PostgresJournal
from tests.integration.pg import Store
from tests.integration.test_journal_tamper import NOW, refused
from tests.integration.test_tamper_refusals import forge
from tests.integration.test_tamper_tombstones import (
    _first_digest,
    archive,
    delivered,
    erase,
    filled,
    tick,
    traffic,
    verify,
    written,
)

ADDED = "is not in the chain: it was added outside tongban"
ENTRY = AuditEntry(at=NOW, who="ops", role="support", action="search")


async def first_releases(where: Store, monkeypatch: pytest.MonkeyPatch, n: int = 4) -> list[str]:
    """A journal as the first releases left it: n delivered exchanges with their 32-byte row
    digests, the first archived with no ~archived record, a refusal row with no ~refusal record,
    no stored-format mark."""
    monkeypatch.setattr(rows, "shown_digest", _first_digest)

    async def exchanges(j: Any) -> None:
        ids.extend([await delivered(j, i) for i in range(n)])

    ids: list[str] = []
    await written(where, exchanges)
    monkeypatch.undo()
    await erase(where, ids[0])
    await forge(where)
    await where.execute("UPDATE chain_head SET format = NULL")
    assert await verify(where) is None  # as the first releases left it
    return ids


async def records(where: Store) -> int:
    return int(await where.fetchval("SELECT count(*) FROM events WHERE kind = ?", "~inherited"))


async def noted(j: Any) -> None:
    await j.note(ENTRY)


async def test_an_upgraded_journal_of_the_first_releases_verifies(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first write of this release (an audit entry) marks the journal and records what the
    first releases left: verify still holds, and no second record is written."""
    await first_releases(where, monkeypatch)
    await written(where, noted)
    assert await where.fetchval("SELECT format FROM chain_head") is not None
    assert await records(where) == 1
    assert await verify(where) is None
    await written(where, lambda j: traffic(j, 20, 2))
    assert await records(where) == 1
    assert await verify(where) is None


@pytest.mark.parametrize("first", ["refuse", "create"])
async def test_a_refusal_or_an_exchange_as_the_first_write(
    where: Store, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    """The upgrade's first write keeps a refusal (its row and its record in the same transaction)
    or creates an exchange: the record counts the first releases' row only; verify holds."""
    await first_releases(where, monkeypatch)

    async def step(j: Any) -> None:
        if first == "refuse":
            await j.refuse(refused(NOW))
        else:
            await delivered(j, 30)

    await written(where, step)
    assert await records(where) == 1
    assert await verify(where) is None


async def test_an_archive_as_the_first_write_counts_only_the_first_releases(
    where: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The upgrade's first write archives old exchanges (its own tombstones and records in the
    same transaction): the record counts only the first releases' tombstones; verify holds."""
    await first_releases(where, monkeypatch)
    assert await archive(where, tmp_path, NOW + 2.5) == (2, 6)
    assert await records(where) == 1
    assert await verify(where) is None


async def test_a_rekey_as_the_first_write_records_them_too(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rekey (which raises the mark with its own SQL) as the upgrade's first write."""
    await first_releases(where, monkeypatch)
    await written(where, lambda j: j.rekey())
    assert await records(where) == 1
    assert await verify(where) is None


async def test_an_exchange_erased_after_the_upgrade_is_named(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One more of the first releases' exchanges made tombstones by SQL after the upgrade."""
    ids = await first_releases(where, monkeypatch)
    await written(where, noted)
    await erase(where, ids[1])
    broken = await verify(where)
    assert broken is not None and broken.startswith(f"exchange {ids[1]}: event 4 ")
    assert "not among what the first releases left" in broken


async def test_a_cleared_mark_after_the_upgrade_gains_nothing(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mark cleared again after the upgrade, an exchange erased: the record still rules,
    and the next write records nothing more."""
    ids = await first_releases(where, monkeypatch)
    await written(where, noted)
    await erase(where, ids[1])
    await where.execute("UPDATE chain_head SET format = NULL")
    assert "not among what the first releases left" in str(await verify(where))
    await written(where, noted)
    assert await records(where) == 1


async def test_a_refusal_row_added_after_the_upgrade_is_named(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal row with no record added by SQL after the upgrade."""
    await first_releases(where, monkeypatch)
    await written(where, noted)
    await forge(where)
    broken = await verify(where)
    assert broken is not None and broken.startswith("refusal 2: ") and ADDED in broken


async def test_a_first_releases_refusal_row_deleted_after_the_upgrade_is_named(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record says one refusal row was left; deleting it is named."""
    await first_releases(where, monkeypatch)
    await written(where, noted)
    await where.execute("DELETE FROM refusals")
    broken = await verify(where)
    assert broken is not None and "(~inherited): records that the first releases left 1" in broken
    assert "the journal holds 0: removed outside tongban" in broken


@pytest.mark.parametrize("column", ["data", "kind"])
async def test_the_record_edited_without_the_key_breaks_the_chain(
    where: Store, monkeypatch: pytest.MonkeyPatch, column: str
) -> None:
    """The record's data (another record's in its place) or its kind changed by SQL."""
    await first_releases(where, monkeypatch)
    await written(where, noted)
    other = await where.fetchval("SELECT data FROM events WHERE kind = ?", rows.AUDIT)
    value = other if column == "data" else rows.AUDIT
    seq = await where.fetchval("SELECT seq FROM events WHERE kind = ?", "~inherited")
    await where.execute(f"UPDATE events SET {column} = ? WHERE seq = ?", value, seq)
    assert str(await verify(where)).startswith(f"event {seq} ")


async def test_a_record_forged_without_the_key_is_named(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record copied to the end of the chain by SQL (its hash kept): the head is not signed
    for it."""
    await first_releases(where, monkeypatch)
    await written(where, noted)
    last = await where.fetchval("SELECT max(seq) FROM events")
    await where.execute(
        "INSERT INTO events (seq, exchange_id, at, kind, data, hash, state, archived)"
        " SELECT ?, exchange_id, at, kind, data, hash, state, archived FROM events WHERE kind = ?",
        last + 1,
        "~inherited",
    )
    assert await verify(where) is not None


async def append_record(where: Store, counts: dict[str, int]) -> None:
    """A record appended with the journal's key (as only tongban can)."""
    j = where.journal(clock=tick)
    await j.open()
    try:
        event = inherited.record(j.seal, NOW, counts)
        if isinstance(j, PostgresJournal):

            async def op(conn: Any, chain: Any) -> None:
                chain.add([event])

            await j._write(op)
        else:
            chain = j._chain
            await j._write(lambda conn: chain.append(conn, [event]))
    finally:
        await j.close()


COUNTS = {"tombstones": 3, "tombstone": 3, "refusals": 0, "refusal": 0, "era": 6, "first": 4}


async def test_a_second_record_is_named(where: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the first record counts: another one is named."""
    await first_releases(where, monkeypatch)
    await written(where, noted)
    await append_record(where, COUNTS)
    assert "records again what the first releases left unrecorded" in str(await verify(where))


async def test_a_journal_this_release_started_gains_nothing(where: Store) -> None:
    """A journal this release started, an exchange erased and the mark cleared: the next write
    records nothing, the erasure is named; a record appended with the key is named too."""
    ids = await filled(where)
    await erase(where, ids[0])
    await where.execute("UPDATE chain_head SET format = NULL")
    await written(where, noted)
    assert await records(where) == 0
    assert "no record of archiving" in str(await verify(where))
    await append_record(where, COUNTS)
    assert "a marking release wrote before it" in str(await verify(where))


async def test_the_memory_journal_never_records_one_and_names_one() -> None:
    """The in-memory journal is never a first release's: its writes record nothing, and a
    record in its chain is named."""
    j = InMemoryJournal(clock=tick)
    await j.open()
    try:
        await traffic(j, 0, 2)
        assert all(s.event.kind != inherited.INHERITED for s in j._chain)
        assert (await j.verify())[1] is None
        _, at, kind, data, state = inherited.record(j.seal, NOW, COUNTS)
        j._link(Event(exchange_id="", kind=kind, at=at, data={}), data, state)
        assert "a marking release wrote before it" in str((await j.verify())[1])
        assert all(e.kind != inherited.INHERITED for e in j.events)  # hidden, as on SQL
    finally:
        await j.close()
