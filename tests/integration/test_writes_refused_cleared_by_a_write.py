"""A journal that refused writes for want of room stops saying so once a write that adds rows
commits, on PostgreSQL as on SQLite, with no ping of that journal object needed.

On PostgreSQL only a ping's probe cleared the flag (or a write where the probe could not tell):
applications were taken again and ``writes_refused`` stayed true. Under ``serve --workers`` each
worker publishes its own flag (``Metrics.refresh``, which does not ping) and a scrape reaches one
worker, so another worker's stale 1 kept TongbanJournalFull firing while every worker took
applications. SQLite cleared its flag at the next commit once there was room. A write refused
after that sets the flag again, and updates in place (a presence beat, a lease renewal), which
need no new page, do not clear it. The in-memory journal has no disk to fill: its flag is never
set (``test_metrics_journal_full.test_memory_gauge_stays_zero``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from federation.domain.errors import JournalUnavailable
from federation.runtime.metrics import Metrics
from replay.instances import Instance
from replay.sqlite import SQLiteJournal
from tests.integration.pg import PgSchema, fresh_schema
from tests.integration.test_journal_contract import NOW, new
from tests.integration.test_pg_ready_while_full import _full, _room
from tests.integration.test_ready_while_writes_fail import capped, fill

HERE = Instance(id="h:1", host="h", pid=1, config_version="v", started_at=NOW, seen_at=NOW)
BIG = "x" * 2000  # an application that needs new pages of a full SQLite journal


class Host:
    """What ``Metrics.refresh`` reads of a broker: its journal, no breaker, no backlog."""

    def __init__(self, journal: Any) -> None:
        self.journal = journal
        self.catalogue: Any = None
        self.owner = "h:1"

    def breaker_states(self) -> dict[str, str]:
        return {}

    def poll_backlog(self) -> int:
        return 0


def published(journal: Any) -> float | None:
    """The gauge a worker publishes for ``journal`` every few seconds (no ping, no scrape)."""
    metrics = Metrics("h:1")
    metrics.refresh(Host(journal))
    return metrics.registry.get_sample_value("tongban_journal_writes_refused")


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    async with fresh_schema() as schema:
        yield schema


async def test_postgres_a_write_with_room_clears_the_flag(pg: PgSchema) -> None:
    """Refused (53100): the flag set, and kept through a presence beat and a lease renewal once
    there is room again; cleared by the application taken then, with no ping; set again by the
    next refusal."""
    journal = pg.journal()
    await journal.open()
    try:
        held, _ = await journal.create(new("k0"), owner="w", lease_until=NOW + 60)
        await _full(pg)
        with pytest.raises(JournalUnavailable, match="No space left on device"):
            await journal.create(new("k1", at=NOW + 1), owner="w", lease_until=NOW + 61)
        refused = journal.writes_refused, published(journal)
        await _room(pg)
        await journal.announce(replace(HERE, seen_at=NOW + 15))
        await journal.renew(owner="w", ids=[held.id], lease_until=NOW + 90)
        in_place = journal.writes_refused
        _, created = await journal.create(new("k2", at=NOW + 2), owner="w", lease_until=NOW + 62)
        taken = journal.writes_refused, published(journal)
        await _full(pg)
        with pytest.raises(JournalUnavailable, match="No space left on device"):
            await journal.create(new("k3", at=NOW + 3), owner="w", lease_until=NOW + 63)
        again = journal.writes_refused, published(journal)
    finally:
        await journal.close()
    assert (refused, in_place, created) == ((True, 1.0), True, True)
    assert (taken, again) == ((False, 0.0), (True, 1.0))


async def test_sqlite_a_write_with_room_clears_the_flag(tmp_path: Path) -> None:
    """The same on SQLite (its full disk the writer's page limit): cleared by the commit once
    there is room, set again by the next refusal."""
    journal = SQLiteJournal(tmp_path / "j.sqlite")
    await journal.open()
    try:
        await capped(journal, None)
        await fill(journal, 0)
        refused = journal.writes_refused, published(journal)
        pages = await journal._write(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
        await capped(journal, pages + 1000)
        _, created = await journal.create(new("z1", at=NOW + 900), owner="w", lease_until=NOW + 960)
        taken = journal.writes_refused, published(journal)
        await capped(journal, None)
        await fill(journal, 1000)
        again = journal.writes_refused, published(journal)
    finally:
        await journal.close()
    assert (refused, created, taken, again) == ((True, 1.0), True, (False, 0.0), (True, 1.0))
