"""The journal's hash chain: untouched journals verify; a flipped byte, a deleted or moved row do not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from federation.ids import new_id
from federation.models import Direction, Event, NewExchange, State, StateChange
from replay.sqlite import SQLiteJournal

NOW = 1_790_000_000.0


async def filled(path: Path, n: int = 5) -> list[str]:
    """A journal with n exchanges, each with a few events."""
    j = SQLiteJournal(path)
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


async def verify(path: Path) -> tuple[int, str | None]:
    j = SQLiteJournal(path)
    await j.open()
    try:
        count, broken = await j.verify()
    finally:
        await j.close()
    return count, str(broken) if broken else None


async def test_an_untouched_journal_verifies(tmp_path: Path) -> None:
    """Every event of a journal written by tongban checks out."""
    path = tmp_path / "j.sqlite"
    await filled(path)
    assert await verify(path) == (15, None)


async def test_a_flipped_byte_is_found(tmp_path: Path) -> None:
    """Changing one byte of an event's data breaks the chain at exactly that event."""
    path = tmp_path / "j.sqlite"
    await filled(path)
    with sqlite3.connect(path) as conn:
        data = bytearray(conn.execute("SELECT data FROM events WHERE seq = 7").fetchone()[0])
        data[5] ^= 0x01
        conn.execute("UPDATE events SET data = ? WHERE seq = 7", (bytes(data),))
    _, broken = await verify(path)
    assert broken is not None and broken.startswith("event 7 ")
    assert "altered" in broken


async def test_a_deleted_row_is_found(tmp_path: Path) -> None:
    """Deleting an event in the middle is named at the event that follows the gap."""
    path = tmp_path / "j.sqlite"
    await filled(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM events WHERE seq = 4")
    _, broken = await verify(path)
    assert broken is not None and broken.startswith("event 5 ")
    assert "missing" in broken


async def test_reordered_rows_are_found(tmp_path: Path) -> None:
    """Swapping two events' places breaks the chain at the first of them."""
    path = tmp_path / "j.sqlite"
    await filled(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE events SET seq = -1 WHERE seq = 8")
        conn.execute("UPDATE events SET seq = 8 WHERE seq = 9")
        conn.execute("UPDATE events SET seq = 9 WHERE seq = -1")
    _, broken = await verify(path)
    assert broken is not None and broken.startswith("event 8 ")


@pytest.mark.parametrize("writers", [2])
async def test_two_writers_keep_one_chain(tmp_path: Path, writers: int) -> None:
    """Two journal objects on one file (a CLI beside a broker) still produce one valid chain."""
    path = tmp_path / "j.sqlite"
    await filled(path, 1)
    a, b = SQLiteJournal(path), SQLiteJournal(path)
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
    assert await verify(path) == (3 + writers * 2, None)
