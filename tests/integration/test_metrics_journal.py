"""What /metrics reads from the journal (Journal.tally) on every backend, instances on one
PostgreSQL database agreeing, and the commit hook of each backend's writer."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from federation.domain.ids import new_id
from federation.domain.models import Direction, NewExchange, State, StateChange
from replay.factory import open_journal
from replay.journal import Backend
from replay.tally import Tally, observe_commits
from tests.integration.pg import fresh_schema
from tests.integration.test_journal_compact import _migrated_to

NOW = 1_790_000_000.0


def new(key: str, partner: str, service: str, at: float) -> NewExchange:
    return NewExchange(
        id=new_id(at),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target=partner,
        service=service,
        idempotency_key=key,
        request_hash=f"sha256:{key}",
        application={"applicant": {"name": "陳大文"}},
        received_at=at,
    )


async def fill(journal: Backend) -> None:
    """hk: one delivered (callback owed) and one waiting since NOW+10; sc: one waiting since NOW+5."""
    done, _ = await journal.create(new("a", "hk", "TD-VL-RENEW", NOW), owner="w", lease_until=NOW)
    await journal.create(new("b", "hk", "TD-VL-RENEW", NOW + 10), owner="w", lease_until=NOW)
    await journal.create(new("c", "sc", "HF-WITHDRAW", NOW + 5), owner="w", lease_until=NOW)
    await journal.record(done.id, [], StateChange(state=State.DELIVERING, attempts=1), owner="w")
    await journal.record(
        done.id, [], StateChange(state=State.DELIVERED, receipt={}, notify=True), owner="w"
    )


EXPECTED = Tally(
    exchanges={
        ("delivered", "hk", "TD-VL-RENEW"): 1,
        ("received", "hk", "TD-VL-RENEW"): 1,
        ("received", "sc", "HF-WITHDRAW"): 1,
    },
    oldest_waiting={"hk": NOW + 10, "sc": NOW + 5},
    callbacks_pending=1,
)


async def test_the_tally_counts_by_state_partner_and_service(journal: Backend) -> None:
    """Exchanges per (state, partner, service), the oldest exchange not yet ended per partner and
    the callbacks owed, the same on every backend."""
    assert await journal.tally() == Tally()
    await fill(journal)
    assert await journal.tally() == EXPECTED


async def test_instances_on_one_postgresql_database_report_the_same_counts() -> None:
    """Two instances' journals on one schema: what one writes, the other's tally shows too, so
    every instance's /metrics reports the same journal counts."""
    async with fresh_schema() as pg:
        first, second = pg.journal(), pg.journal()
        await first.open()
        await second.open()
        try:
            await fill(first)
            assert await second.tally() == await first.tally() == EXPECTED
        finally:
            await first.close()
            await second.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_each_committed_batch_is_reported_with_its_size(backend: str, tmp_path: Path) -> None:
    """The writer reports every commit (its duration and how many writes it held) to that
    journal's observers only; 40 concurrent creates are all counted, and nothing after stop()."""
    async with contextlib.AsyncExitStack() as stack:
        if backend == "postgresql":
            journal: Backend = (await stack.enter_async_context(fresh_schema())).journal()
        else:
            journal = open_journal(tmp_path / "commits.sqlite")
        await journal.open()
        stack.push_async_callback(journal.close)
        other = open_journal(tmp_path / "other.sqlite")  # another journal in the process
        await other.open()
        stack.push_async_callback(other.close)
        seen: list[tuple[float, int]] = []
        elsewhere: list[int] = []
        stop = observe_commits(journal, lambda s, n: seen.append((s, n)))
        stop_other = observe_commits(other, lambda s, n: elsewhere.append(n))
        await asyncio.gather(
            *(
                journal.create(new(f"k{i}", "hk", "TD-VL-RENEW", NOW), owner="w", lease_until=NOW)
                for i in range(40)
            )
        )
        stop()
        stop_other()
        assert sum(n for _, n in seen) >= 40
        assert elsewhere == []  # each journal's commits reach its own observers only
        assert all(s >= 0 and n >= 1 for s, n in seen)
        counted = len(seen)
        await journal.create(new("after", "hk", "TD-VL-RENEW", NOW), owner="w", lease_until=NOW)
        assert len(seen) == counted


async def test_the_tally_follows_replays_and_archiving(journal: Backend, tmp_path: Path) -> None:
    """Counts stay those of the exchanges there are: a failed exchange replayed counts as queued
    again, archived exchanges no longer count, and counts() agrees with the tally (on SQLite both
    read counts its triggers keep; the others group the rows)."""
    await fill(journal)
    failed, _ = await journal.create(new("d", "sc", "HF-WITHDRAW", NOW), owner="w", lease_until=NOW)
    await journal.record(failed.id, [], StateChange(state=State.DELIVERING, attempts=1), owner="w")
    await journal.record(failed.id, [], StateChange(state=State.FAILED), owner="w")
    assert (await journal.tally()).exchanges[("failed", "sc", "HF-WITHDRAW")] == 1
    replayed = StateChange(state=State.QUEUED, expect=frozenset({State.FAILED}), release_lease=True)
    await journal.record(failed.id, [], replayed)
    await journal.record(failed.id, [], StateChange(state=State.DELIVERING, attempts=2))
    await journal.record(failed.id, [], StateChange(state=State.DELIVERED, receipt={}))
    counted = (await journal.tally()).exchanges
    assert counted == {**EXPECTED.exchanges, ("delivered", "sc", "HF-WITHDRAW"): 1}
    assert await journal.counts() == {"delivered": 2, "received": 2}
    archived, _ = await journal.archive(older_than=NOW + 10**9, out=tmp_path / "a.jsonl.gz")
    assert archived == 1  # the hk delivery still owes its callback: it stays
    after = (await journal.tally()).exchanges
    assert after == {**EXPECTED.exchanges}
    assert await journal.counts() == {"delivered": 1, "received": 2}


async def test_sqlite_counts_kept_by_triggers_equal_a_full_count(tmp_path: Path) -> None:
    """The counts SQLite's triggers keep equal a GROUP BY over the rows after inserts, moves,
    changes made behind the journal's back and deletes; a journal migrated with rows in it starts
    with them counted (migration 0014)."""
    path = tmp_path / "counted.sqlite"
    _migrated_to(path, 13)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for n, (state, target) in enumerate(
            [("delivered", "hk"), ("failed", "hk"), ("received", "mo")]
        ):
            conn.execute(
                "INSERT INTO exchanges (id, direction, source, target, service, idempotency_key,"
                " request_hash, state, attempts, created_at, updated_at)"
                " VALUES (?, 'outbound', 'gd-portal', ?, 'S', ?, 'h', ?, 1, ?, ?)",
                (new_id(NOW + n), target, f"k{n}", state, NOW, NOW),
            )
    j = open_journal(path)
    await j.open()
    try:
        await fill(j)
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("UPDATE exchanges SET state = 'queued' WHERE state = 'failed'")
            conn.execute("UPDATE exchanges SET target = 'sc' WHERE target = 'mo'")
            conn.execute("DELETE FROM exchanges WHERE idempotency_key = 'k0'")
            grouped = conn.execute(
                "SELECT state, target, service, count(*) FROM exchanges"
                " GROUP BY state, target, service"
            ).fetchall()
        truth = {(s, t, v): n for s, t, v, n in grouped}
        assert (await j.tally()).exchanges == truth
        assert truth[("queued", "hk", "S")] == 1 and ("received", "mo", "S") not in truth
    finally:
        await j.close()
