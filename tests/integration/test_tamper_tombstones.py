"""Tombstones made outside tongban: verify names every one, and never what tongban archived.

Whoever can write the database (not the key) can mark events archived, empty them and keep their
stored hashes, so the chain, the signed head and the checkpoints still hold. What gives such an
erasure away is the chain's ``~archived`` record of each archived exchange, which says how many of
its events were archived: every tombstone must be counted by a later record of its exchange, and
only an exchange's events are ever archived (an audit entry or a refusal's record never is). Run
on SQLite and PostgreSQL with the same SQL; the in-memory journal (no SQL) shows the legitimate
side: archive and rekey leave a journal that verifies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from federation.domain.models import Event, State, StateChange
from replay import rows
from replay.journal import AuditEntry
from replay.memory import InMemoryJournal
from tests.integration.pg import Store
from tests.integration.test_journal_tamper import NOW, new, refused

ERASED = "erased outside tongban"
CLOCK = [NOW]  # the journals' time: an exchange's writes happen at its own time


def tick() -> float:
    return CLOCK[0]


async def delivered(j: Any, i: int) -> str:
    """An exchange delivered (received, mapped, delivered: 3 events) at NOW + i; its id."""
    CLOCK[0] = NOW + i
    ex, _ = await j.create(new(i), owner="w", lease_until=NOW + 100)
    mapped = Event(exchange_id=ex.id, kind="mapped", at=NOW + i + 0.5, data={"mapped": {"n": i}})
    await j.record(ex.id, [mapped], StateChange(state=State.DELIVERING, attempts=1), owner="w")
    done = Event(exchange_id=ex.id, kind="delivered", at=NOW + i + 0.7, data={"receipt": "R"})
    change = StateChange(state=State.DELIVERED, receipt={"ref": "R"}, release_lease=True)
    await j.record(ex.id, [done], change, owner="w")
    return str(ex.id)


async def traffic(j: Any, start: int, n: int) -> list[str]:
    """n delivered exchanges, then an audit entry and a refusal."""
    ids = [await delivered(j, i) for i in range(start, start + n)]
    await j.note(AuditEntry(at=NOW, who="ops", role="support", action="show", target=ids[0]))
    await j.refuse(refused(NOW))
    return ids


async def filled(where: Store, n: int = 4, **kw: Any) -> list[str]:
    """A closed journal of n delivered exchanges, an audit entry and a refusal."""
    j = where.journal(clock=tick, **kw)
    await j.open()
    try:
        return await traffic(j, 0, n)
    finally:
        await j.close()


async def written(where: Store, step: Any) -> None:
    """``step(j)`` on the journal opened, then closed."""
    j = where.journal(clock=tick)
    await j.open()
    try:
        await step(j)
    finally:
        await j.close()


async def verify(where: Store) -> str | None:
    """What `tongban journal verify` says is broken (None: it holds)."""
    j = where.journal(clock=tick)
    await j.open()
    try:
        _, broken = await j.verify()
    finally:
        await j.close()
    return None if broken is None else str(broken)


async def tombstone(where: Store, condition: str, *args: Any) -> None:
    """What the attacker runs: events emptied and marked archived, their stored hashes kept."""
    await where.execute(
        f"UPDATE events SET archived = ?, data = ?, state = NULL WHERE {condition}",
        True,
        b"",
        *args,
    )


async def erase(where: Store, xid: str) -> None:
    """An exchange erased without the key: its events tombstones, its row deleted."""
    await tombstone(where, "exchange_id = ?", xid)
    await where.execute("DELETE FROM exchanges WHERE id = ?", xid)


async def archive(where: Store, tmp_path: Path, older_than: float, **kw: Any) -> tuple[int, int]:
    """`tongban journal archive`: exchanges ended before ``older_than`` to an archive file."""
    j = where.journal(clock=tick)
    await j.open()
    try:
        return await j.archive(older_than=older_than, out=tmp_path / f"a{older_than}.gz", **kw)
    finally:
        await j.close()


async def test_everything_erased_is_found(where: Store) -> None:
    """Every event a tombstone, every exchange and refusal row deleted: verify names it."""
    await filled(where)
    await tombstone(where, "seq > 0")
    await where.execute("DELETE FROM exchanges")
    await where.execute("DELETE FROM refusals")
    assert ERASED in str(await verify(where))


async def test_the_oldest_exchanges_erased_are_found(where: Store) -> None:
    """The two oldest exchanges erased, no ~archived record: the first is named."""
    ids = await filled(where)
    for xid in ids[:2]:
        await erase(where, xid)
    broken = await verify(where)
    assert broken is not None and broken.startswith(f"exchange {ids[0]}: event 1 ")
    assert "no record of archiving" in broken


async def test_the_audit_trail_erased_is_found(where: Store) -> None:
    """Every audit entry made a tombstone: an event of no exchange is never archived."""
    await filled(where)
    await tombstone(where, "kind = ?", rows.AUDIT)
    broken = await verify(where)
    assert broken is not None and f"({rows.AUDIT}): is marked archived" in broken
    assert ERASED in broken


async def test_a_refusals_record_erased_is_found(where: Store) -> None:
    """The refusal's record made a tombstone and its row deleted."""
    await filled(where)
    await tombstone(where, "kind = ?", rows.REFUSAL)
    await where.execute("DELETE FROM refusals")
    assert f"({rows.REFUSAL}): is marked archived" in str(await verify(where))


async def test_everything_up_to_the_first_audit_entry_erased_is_found(where: Store) -> None:
    """The exchanges before the first audit entry, that entry and every later one tombstoned:
    moving where the chain's first digest is found grants nothing."""
    j = where.journal(clock=tick)
    await j.open()
    try:
        first = await traffic(j, 0, 2)
        await traffic(j, 10, 2)
    finally:
        await j.close()
    audit = await where.fetchval("SELECT min(seq) FROM events WHERE kind = ?", rows.AUDIT)
    for xid in first:
        await where.execute("DELETE FROM exchanges WHERE id = ?", xid)
    await where.execute("DELETE FROM refusals")
    await tombstone(where, "seq <= ? OR kind = ? OR kind = ?", audit, rows.AUDIT, rows.REFUSAL)
    assert ERASED in str(await verify(where))


async def test_a_tombstone_moved_to_an_archived_exchange_is_found(
    where: Store, tmp_path: Path
) -> None:
    """An audit entry tombstoned and given the id of an exchange tongban archived: that exchange
    has one tombstone more than its ~archived record counts."""
    ids = await filled(where)
    await archive(where, tmp_path, NOW + 1.5)  # the first exchange
    assert await verify(where) is None
    await tombstone(where, "kind = ?", rows.AUDIT)
    await where.execute("UPDATE events SET exchange_id = ? WHERE kind = ?", ids[0], rows.AUDIT)
    broken = await verify(where)
    assert broken is not None and broken.startswith(f"exchange {ids[0]}: ")
    assert "4 of its events are marked archived, but the chain recorded archiving 3" in broken


async def test_an_exchange_erased_behind_an_archived_ones_record_is_found(
    where: Store, tmp_path: Path
) -> None:
    """A live exchange's events tombstoned and given the id of an archived one: counted."""
    ids = await filled(where)
    await archive(where, tmp_path, NOW + 1.5)
    await where.execute(
        "UPDATE events SET exchange_id = ? WHERE exchange_id = ? AND kind = ?",
        ids[0],
        ids[1],
        "received",
    )
    await tombstone(where, "exchange_id = ? AND archived = ?", ids[0], False)
    broken = await verify(where)
    assert broken is not None and f"exchange {ids[0]}: " in broken


async def test_a_later_event_tombstoned_under_an_archived_exchanges_id_is_found(
    where: Store, tmp_path: Path
) -> None:
    """An audit entry written after an exchange was archived, tombstoned and given its id: the
    chain recorded archiving the exchange before that event existed."""
    ids = await filled(where)
    await archive(where, tmp_path, NOW + 1.5)
    j = where.journal(clock=tick)
    await j.open()
    try:
        await j.note(AuditEntry(at=NOW, who="ops", role="support", action="search"))
    finally:
        await j.close()
    last = await where.fetchval("SELECT max(seq) FROM events")
    record = await where.fetchval("SELECT seq FROM events WHERE kind = ?", rows.ARCHIVED)
    await tombstone(where, "seq = ?", last)
    await where.execute("UPDATE events SET exchange_id = ? WHERE seq = ?", ids[0], last)
    broken = await verify(where)
    assert broken == (
        f"exchange {ids[0]}: event {last} is marked archived, but the chain recorded archiving "
        f"the exchange at event {record}, before it: erased outside tongban"
    )


async def test_a_journal_marked_as_the_first_releases_left_it_gains_nothing(
    where: Store,
) -> None:
    """The stored-format mark set back to none (a journal no marking release wrote), to claim
    the first releases' leniency for tombstones with no record: the chain's full row digests
    show a marking release wrote it, so the erasure is still named."""
    ids = await filled(where)
    await erase(where, ids[0])
    await where.execute("UPDATE chain_head SET format = NULL")
    assert "no record of archiving" in str(await verify(where))


async def test_tongban_archive_rekey_and_archive_again_verify(where: Store, tmp_path: Path) -> None:
    """Archive in small batches, a rekey, more traffic and another archive: ok throughout."""
    ids = await filled(where, 5)
    assert await archive(where, tmp_path, NOW + 2.5, chunk=1) == (3, 9)
    assert await verify(where) is None
    j = where.journal(clock=tick)
    await j.open()
    try:
        await j.rekey()
        _, broken = await j.verify()
        assert broken is None
        await traffic(j, 20, 2)
    finally:
        await j.close()
    assert await archive(where, tmp_path, NOW + 100) == (4, 12)
    assert await verify(where) is None
    assert await where.fetchval("SELECT count(*) FROM exchanges WHERE id = ?", ids[4]) == 0
    # the records a rekey sealed again still give their counts
    first = await where.fetchval("SELECT min(seq) FROM events WHERE kind = ?", rows.AUDIT)
    await tombstone(where, "seq = ?", first)
    await where.execute("UPDATE events SET exchange_id = ? WHERE seq = ?", ids[0], first)
    assert "of its events are marked archived, but the chain recorded archiving 3" in str(
        await verify(where)
    )


async def test_the_first_releases_archive_without_a_record_still_verifies(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal as the first releases left it (no stored-format mark, row digests of fewer
    columns, an exchange archived with no ~archived record, before any later event's digest)
    verifies; with the mark of any later release, the same tombstones are named."""
    monkeypatch.setattr(rows, "shown_digest", _first_digest)
    ids = await filled(where)
    monkeypatch.undo()
    await erase(where, ids[0])
    await where.execute("UPDATE chain_head SET format = NULL")
    assert await verify(where) is None
    await where.execute("UPDATE chain_head SET format = ?", 2)
    assert "no record of archiving" in str(await verify(where))


def _first_digest(row: rows.Row) -> bytes:
    """A row digest as the first releases recorded it: all 32 bytes, of fewer columns."""
    return rows._digest(b"tongban/shown/1", (row[k] for k in rows.SHOWN_1))


async def test_memory_archive_and_rekey_verify(tmp_path: Path) -> None:
    """The in-memory journal: archive (in batches), rekey, archive again: ok throughout."""
    j = InMemoryJournal(clock=tick)
    await j.open()
    try:
        await traffic(j, 0, 5)
        assert await j.archive(older_than=NOW + 2.5, out=tmp_path / "a.gz", chunk=1) == (3, 9)
        assert (await j.verify())[1] is None
        await j.rekey()
        await traffic(j, 20, 2)
        assert (await j.archive(older_than=NOW + 100, out=tmp_path / "b.gz"))[0] == 4
        assert (await j.verify())[1] is None
    finally:
        await j.close()
