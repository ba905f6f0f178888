"""While a journal refuses writes for want of room, its ping (/readyz, which anyone may ask, and
every scrape of /metrics) looks for room again: at most one look at a time, shared by the pings
that come while it runs, and none sooner than a few seconds after the last, the pings between
answering with what the flag says.

Each look writes: on PostgreSQL a probe inserts 64 to 512 pages of random bytes and vacuums them
away; on SQLite the writer writes 512 KiB beside the file and fsyncs them. Every ping made its own,
concurrently and without limit, so N /readyz at once wrote N times that on a disk nearly full, and
SQLite's held the turn that the processes writing the same file share. Now SQLite looks after the
turn is given back. The in-memory journal has no disk and never looks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from federation.domain.errors import JournalUnavailable
from replay import dbthread, pgroom
from replay.sqlite import SQLiteJournal
from tests.integration.pg import PgSchema, fresh_schema
from tests.integration.test_journal_contract import NOW, new
from tests.integration.test_journal_prepare import turn_free
from tests.integration.test_pg_ready_while_full import _full, _room
from tests.integration.test_ready_while_writes_fail import capped, fill

PINGS = 8


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def not_ready(answers: Sequence[Any]) -> bool:
    """Whether every ping said the journal's writes fail."""
    return all(isinstance(a, JournalUnavailable) and "writes fail" in str(a) for a in answers)


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    async with fresh_schema() as schema:
        yield schema


async def test_postgres_pings_share_one_probe(
    pg: PgSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight pings at once on a full server: one probe, all eight not ready. Room back: a ping
    within ``PROBE_EVERY`` of it probes nothing and is not ready; the next after it finds room."""
    clock = Clock()
    monkeypatch.setattr(pgroom, "monotonic", clock)
    probes: list[int] = []
    real = pgroom.probe

    async def counted(conn: Any) -> None:
        probes.append(1)
        await real(conn)

    monkeypatch.setattr(pgroom, "probe", counted)
    journal = pg.journal()
    await journal.open()
    try:
        await _full(pg)
        with pytest.raises(JournalUnavailable):
            await journal.create(new("k1"), owner="w", lease_until=NOW + 60)
        answers = await asyncio.gather(
            *(journal.ping() for _ in range(PINGS)), return_exceptions=True
        )
        at_once = len(probes)
        await _room(pg)
        clock.now += pgroom.PROBE_EVERY / 2
        between = await asyncio.gather(journal.ping(), return_exceptions=True)
        clock.now += pgroom.PROBE_EVERY
        await journal.ping()  # ready: the probe found room
        after = len(probes)
    finally:
        await journal.close()
    assert (at_once, not_ready(answers), not_ready(between), after) == (1, True, True, 2)


async def test_sqlite_pings_share_one_look_outside_the_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite, its page limit raised but its disk full: the commit after looks once; eight pings
    at once and one within ``ROOM_EVERY`` of it look no more and are not ready; the next after
    it finds room. Each look made while other processes may take the turn."""
    clock = Clock()
    monkeypatch.setattr(dbthread, "monotonic", clock)
    path = tmp_path / "j.sqlite"
    looks: list[bool] = []  # whether the turn was free during each
    disk_has_room = [False]

    def disk(where: Path, size: int) -> bool:
        looks.append(turn_free(path))
        return disk_has_room[0]

    journal = SQLiteJournal(path)
    await journal.open()
    try:
        await capped(journal, None)
        await fill(journal, 0)
        monkeypatch.setattr(dbthread, "_disk_room", disk)
        await capped(journal, 1_000_000)
        answers = await asyncio.gather(
            *(journal.ping() for _ in range(PINGS)), return_exceptions=True
        )
        clock.now += dbthread.ROOM_EVERY / 2
        between = await asyncio.gather(journal.ping(), return_exceptions=True)
        disk_has_room[0] = True
        clock.now += dbthread.ROOM_EVERY
        await journal.ping()  # ready: the disk has room
    finally:
        await journal.close()
    assert (not_ready(answers), not_ready(between), looks) == (True, True, [True, True])
