"""The journal's hash chain: untouched journals verify; a flipped byte, a deleted or moved row do not.

Run on SQLite and on PostgreSQL (tests/integration/pg.py); the tampering is the same SQL on both.
"""

from __future__ import annotations

import asyncio

import pytest

from federation.domain.ids import new_id
from federation.domain.models import Direction, Event, NewExchange, State, StateChange
from tests.integration.pg import PgSchema, Store

NOW = 1_790_000_000.0


async def filled(where: Store, n: int = 5) -> list[str]:
    """A journal with n exchanges, each with a few events."""
    j = where.journal()
    await j.open()
    ids = []
    for i in range(n):
        new = NewExchange(
            id=new_id(NOW + i),
            direction=Direction.OUTBOUND,
            source="gd-portal",
            target="hk",
            service="TD-VL-RENEW",
            idempotency_key=f"k{i}",
            request_hash="sha256:x",
            application={"applicant": {"name": "陳大文", "hkid": "A123456(3)"}},
            received_at=NOW + i,
        )
        ex, _ = await j.create(new, owner="w", lease_until=NOW + 100)
        await j.record(
            ex.id,
            [
                Event(
                    exchange_id=ex.id, kind="mapped", at=NOW + i + 0.5, data={"mapped": {"x": i}}
                ),
                Event(
                    exchange_id=ex.id, kind="attempt_started", at=NOW + i + 0.6, data={"attempt": 1}
                ),
            ],
            StateChange(state=State.DELIVERING, attempts=1),
            owner="w",
        )
        ids.append(ex.id)
    await j.close()
    return ids


async def verify(where: Store) -> tuple[int, str | None]:
    j = where.journal()
    await j.open()
    try:
        count, broken = await j.verify()
    finally:
        await j.close()
    return count, str(broken) if broken else None


async def test_an_untouched_journal_verifies(where: Store) -> None:
    """Every event of a journal written by tongban checks out."""
    await filled(where)
    assert await verify(where) == (15, None)


async def test_a_flipped_byte_is_found(where: Store) -> None:
    """Changing one byte of an event's data breaks the chain at exactly that event."""
    await filled(where)
    data = bytearray(await where.fetchval("SELECT data FROM events WHERE seq = 7"))
    data[5] ^= 0x01
    await where.execute("UPDATE events SET data = ? WHERE seq = 7", bytes(data))
    _, broken = await verify(where)
    assert broken is not None and broken.startswith("event 7 ")
    assert "altered" in broken


async def test_a_deleted_row_is_found(where: Store) -> None:
    """Deleting an event in the middle is named at the event that follows the gap."""
    await filled(where)
    await where.execute("DELETE FROM events WHERE seq = 4")
    _, broken = await verify(where)
    assert broken is not None and broken.startswith("event 5 ")
    assert "missing" in broken


async def test_reordered_rows_are_found(where: Store) -> None:
    """Swapping two events' places breaks the chain at the first of them."""
    await filled(where)
    await where.execute("UPDATE events SET seq = -1 WHERE seq = 8")
    await where.execute("UPDATE events SET seq = 8 WHERE seq = 9")
    await where.execute("UPDATE events SET seq = 9 WHERE seq = -1")
    _, broken = await verify(where)
    assert broken is not None and broken.startswith("event 8 ")


@pytest.mark.parametrize("writers", [2])
async def test_two_writers_keep_one_chain(where: Store, writers: int) -> None:
    """Two journal objects on one store (a CLI beside a broker) still produce one valid chain."""
    await filled(where, 1)
    a, b = where.journal(), where.journal()
    await a.open()
    await b.open()
    for i, j in enumerate([a, b, a, b][: writers * 2]):
        new = NewExchange(
            id=new_id(NOW + 10 + i),
            direction=Direction.OUTBOUND,
            source="gd-portal",
            target="hk",
            service="TD-VL-RENEW",
            idempotency_key=f"w{i}",
            request_hash="sha256:x",
            application={},
            received_at=NOW + 10 + i,
        )
        await j.create(new, owner="w", lease_until=NOW)
    await a.close()
    await b.close()
    assert await verify(where) == (3 + writers * 2, None)


# -- PostgreSQL specifics ------------------------------------------------------------------------


async def test_pg_instances_writing_at_once_keep_one_chain(postgres: PgSchema) -> None:
    """Three instances creating and recording concurrently: one gapless chain that verifies."""
    instances = [postgres.journal(pool_size=4) for _ in range(3)]
    await asyncio.gather(*[j.open() for j in instances])

    async def one(n: int) -> None:
        j = instances[n % 3]
        new = NewExchange(
            id=new_id(NOW + n),
            direction=Direction.OUTBOUND,
            source="gd-portal",
            target="hk",
            service="TD-VL-RENEW",
            idempotency_key=f"k{n}",
            request_hash="sha256:x",
            application={"n": n},
            received_at=NOW + n,
        )
        ex, _ = await j.create(new, owner=f"w{n % 3}", lease_until=NOW + 100)
        mapped = Event(exchange_id=ex.id, kind="mapped", at=NOW + n + 0.5, data={"mapped": {}})
        await j.record(ex.id, [mapped], StateChange(state=State.QUEUED), owner=f"w{n % 3}")

    try:
        await asyncio.gather(*[one(n) for n in range(150)])
        count, broken = await instances[0].verify()
    finally:
        await asyncio.gather(*[j.close() for j in instances])
    assert (count, broken) == (300, None)
    assert await postgres.fetchval("SELECT max(seq) - min(seq) + 1 FROM events") == 300


async def test_pg_events_cut_from_the_end_are_found(postgres: PgSchema) -> None:
    """Deleting the newest events leaves a chain that links, but the chain head remembers it."""
    await filled(postgres, 2)
    await postgres.execute("DELETE FROM events WHERE seq > 4")
    count, broken = await verify(postgres)
    assert count == 4
    assert broken is not None and broken.startswith("the chain head: ")
    assert "records event 6, but the last event is 4" in broken
