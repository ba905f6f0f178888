"""On a journal the first releases left (no stored-format mark), what they left is counted for the
``~inherited`` record by queries that read every event (nothing indexes what they look for). SQLite
ran them as every writer transaction began, until one raised the mark: a /readyz ping, a presence
beat, a lease renewal, an idle claim each paid for them (about 1.7 s on a journal of a million
events), holding the turn the processes writing the file share. Now a transaction that writes no
event, refusal row or mark before it appends has them run at its first append, and not at all if
it appends nothing; one that may (a refusal, an archive, a rekey) still runs them as it begins.

The record stays what ``replay/inherited.py`` says: one, counting only what the first releases
left, also when a batch of the group commit holds a refusal of this release (its row written
before its record) besides writes that plan late. On PostgreSQL a ping and a presence beat take
no writer batch and never planned, but lease renewals, releases and claims (every poll) are
group-committed: each batch of them planned as it began, holding it, until one raised the mark.
They now plan as on SQLite; the batch test runs there too. The in-memory journal is never a first
release's (``test_first_releases_inherited``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from replay import inherited
from replay.instances import Instance
from replay.journal import AuditEntry
from replay.postgres import PostgresJournal
from replay.sqlite import SQLiteJournal
from tests.integration.pg import SQLiteFile, Store, fresh_schema
from tests.integration.test_first_releases_inherited import first_releases, records
from tests.integration.test_journal_tamper import NOW, refused
from tests.integration.test_tamper_tombstones import delivered, tick, verify, written

HERE = Instance(id="h:1", host="h", pid=1, config_version="v", started_at=NOW, seen_at=NOW)
ENTRY = AuditEntry(at=NOW, who="ops", role="support", action="search")


def counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each plan made on SQLite, counted."""
    plans: list[int] = []
    real = inherited.plan_sqlite

    def counted(conn: Any) -> Any:
        plans.append(1)
        return real(conn)

    monkeypatch.setattr(inherited, "plan_sqlite", counted)
    return plans


async def test_sqlite_transactions_that_append_nothing_plan_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pings, presence beats, lease renewals, idle claims and a release: no plan. The audit
    entry after them: one plan, one record, and the journal verifies."""
    where = SQLiteFile(tmp_path / "journal.sqlite")
    ids = await first_releases(where, monkeypatch)
    plans = counting(monkeypatch)
    made: list[int] = []

    async def idle_then_noted(j: Any) -> None:
        for i in range(5):
            await j.ping()  # what /readyz does
            await j.announce(replace(HERE, seen_at=NOW + i))  # the presence beat
            await j.renew(owner="w", ids=ids, lease_until=NOW + 60 + i)
            await j.claim(owner="w", now=NOW + i, lease_until=NOW + 60 + i, limit=10)
        await j.release(owner="w")
        made.append(len(plans))
        await j.note(ENTRY)

    await written(where, idle_then_noted)
    assert (made, len(plans), await records(where)) == ([0], 1, 1)
    assert await verify(where) is None


def counting_postgres(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each plan made on PostgreSQL, counted."""
    plans: list[int] = []
    real = inherited.plan_postgres

    async def counted(conn: Any) -> Any:
        plans.append(1)
        return await real(conn)

    monkeypatch.setattr(inherited, "plan_postgres", counted)
    return plans


async def test_postgres_batches_that_append_nothing_plan_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lease renewals, claims of work and of callbacks with nothing due, and a release, each its
    own writer batch: no plan. The audit entry after them: one plan, one record, and the journal
    verifies."""
    async with fresh_schema() as where:
        ids = await first_releases(where, monkeypatch)
        plans = counting_postgres(monkeypatch)
        made: list[int] = []

        async def idle_then_noted(j: Any) -> None:
            for i in range(5):
                await j.renew(owner="w", ids=ids, lease_until=NOW + 60 + i)
                await j.claim(owner="w", now=NOW + i, lease_until=NOW + 60 + i, limit=10)
                await j.claim_notifications(owner="w", now=NOW + i, lease_until=NOW + 60, limit=10)
            await j.release(owner="w")
            made.append(len(plans))
            await j.note(ENTRY)
            made.append(len(plans))

        await written(where, idle_then_noted)
        assert (made, len(plans), await records(where)) == ([0, 1], 1, 1)
        assert await verify(where) is None


async def test_postgres_instances_planning_together_record_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two instances whose first appends both plan before either has taken the chain head: the
    second re-checks the mark once it has the head, and only the first records."""
    async with fresh_schema() as where:
        await first_releases(where, monkeypatch)
        real = inherited.plan_postgres
        plans: list[int] = []
        both = asyncio.Event()

        async def together(conn: Any) -> Any:
            planned = await real(conn)
            plans.append(1)
            if len(plans) == 2:
                both.set()
            await asyncio.wait_for(both.wait(), 30)
            return planned

        monkeypatch.setattr(inherited, "plan_postgres", together)
        first, second = where.journal(clock=tick), where.journal(clock=tick)
        await first.open()
        await second.open()
        try:
            await asyncio.gather(first.note(ENTRY), second.note(ENTRY))
        finally:
            await first.close()
            await second.close()
        assert (len(plans), await records(where)) == (2, 1)
        assert await verify(where) is None


def blocked(j: Any, go: threading.Event) -> Callable[[], Any]:
    """A write that holds the writer until ``go`` (so the writes after it queue up and go in one
    batch)."""
    if isinstance(j, PostgresJournal):

        async def op(conn: Any, chain: Any) -> None:
            await asyncio.to_thread(go.wait, 30)

        return lambda: j._write(op)
    assert isinstance(j, SQLiteJournal)
    return lambda: j._write(lambda conn: go.wait(30))


async def test_a_batch_with_a_refusal_records_only_the_first_releases(
    where: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One batch: a refusal of this release first (its row written before its record), then a
    presence beat, an application taken and an audit entry: one record, counting the first
    releases' refusal row only, and the journal verifies."""
    await first_releases(where, monkeypatch)
    go = threading.Event()

    async def one_batch(j: Any) -> None:
        holding = asyncio.ensure_future(blocked(j, go)())
        await asyncio.sleep(0.1)  # the writer holds the blocking write (no assert rests on it)
        writes = [
            asyncio.ensure_future(w)
            for w in (
                j.refuse(refused(NOW + 40)),
                j.announce(HERE),
                delivered(j, 41),
                j.note(ENTRY),
            )
        ]
        await asyncio.sleep(0.1)
        go.set()
        await asyncio.gather(holding, *writes)

    await written(where, one_batch)
    counts = await where.fetch("SELECT count(*) FROM refusals")
    assert (await records(where), counts) == (1, [(2,)])
    assert await verify(where) is None
