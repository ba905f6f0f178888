"""The Journal contract, run against every backend (the embedded SQLite file and the in-memory fake)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from federation.errors import IdempotencyConflict, JournalError, JournalUnavailable, LeaseLost
from federation.ids import new_id
from federation.models import Direction, Event, NewExchange, State, StateChange
from federation.testing import InMemoryJournal
from replay.journal import Journal, Refusal
from replay.sqlite import SQLiteJournal

NOW = 1_790_000_000.0


@pytest.fixture(params=["sqlite", "memory"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    """An open journal of each backend."""
    j: Journal = (
        SQLiteJournal(tmp_path / "contract.sqlite")
        if request.param == "sqlite"
        else InMemoryJournal()
    )
    await j.open()
    yield j
    await j.close()


def new(
    key: str = "k", *, source: str = "gd-portal", body: str = "a", at: float = NOW
) -> NewExchange:
    """A new outbound exchange whose request hash follows ``body``."""
    return NewExchange(
        id=new_id(at),
        direction=Direction.OUTBOUND,
        source=source,
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=key,
        request_hash=f"sha256:{body}",
        application={"applicant": {"name": "陳大文"}, "body": body},
        received_at=at,
    )


def ev(xid: str, kind: str, **data: Any) -> Event:
    return Event(exchange_id=xid, kind=kind, at=NOW + 1, data=data)


async def test_create_is_idempotent_per_source_and_key(journal: Journal) -> None:
    """Same key and hash → the stored exchange; same key, other hash → conflict; other source → new."""
    first, created = await journal.create(new("k"), owner="w1", lease_until=NOW + 30)
    again, created_again = await journal.create(new("k"), owner="w1", lease_until=NOW + 30)
    with pytest.raises(IdempotencyConflict) as conflict:
        await journal.create(new("k", body="b"), owner="w1", lease_until=NOW + 30)
    other, created_other = await journal.create(
        new("k", source="hk-kiosk"), owner="w1", lease_until=NOW
    )
    assert (created, created_again, created_other) == (True, False, True)
    assert again.id == first.id
    assert conflict.value.exchange_id == first.id
    assert other.id != first.id
    assert first.state is State.RECEIVED


async def test_history_keeps_payloads_and_order(journal: Journal) -> None:
    """get() returns the application, the mapped request and the events in order."""
    ex, _ = await journal.create(new(), owner="w1", lease_until=NOW + 30)
    await journal.record(
        ex.id,
        [ev(ex.id, "mapped", mapped={"owner": {"name": "陳大文"}}, versions={"m": "sha256:1"})],
        StateChange(state=State.QUEUED, mapping_versions={"m": "sha256:1"}),
        owner="w1",
    )
    got = await journal.get(ex.id)
    assert got is not None
    assert got.application["applicant"]["name"] == "陳大文"
    assert got.mapped == {"owner": {"name": "陳大文"}}
    assert got.mapping_versions == {"m": "sha256:1"}
    assert [e.kind for e in got.events] == ["received", "mapped"]
    assert await journal.get("01ARZ3NDEKTSV4RRFFQ69G5FAV") is None


async def test_record_is_fenced_by_the_lease_owner(journal: Journal) -> None:
    """A worker that lost the lease cannot write; the new owner can."""
    ex, _ = await journal.create(new(), owner="w1", lease_until=NOW + 1)
    claimed = await journal.claim(owner="w2", now=NOW + 2, lease_until=NOW + 60, limit=10)
    assert [c.id for c in claimed] == [ex.id]
    with pytest.raises(LeaseLost):
        await journal.record(ex.id, [], StateChange(state=State.QUEUED), owner="w1")
    await journal.record(ex.id, [], StateChange(state=State.QUEUED), owner="w2")
    done = await journal.get(ex.id)
    assert done is not None and done.state is State.QUEUED


async def test_impossible_transitions_are_refused(journal: Journal) -> None:
    """received → delivered skips the pipeline; an ended exchange only moves by replay."""
    ex, _ = await journal.create(new(), owner="w1", lease_until=NOW + 30)
    with pytest.raises(JournalError, match="no transition"):
        await journal.record(ex.id, [], StateChange(state=State.DELIVERED), owner="w1")
    await journal.record(ex.id, [], StateChange(state=State.REJECTED, last_error={"m": 1}))
    with pytest.raises(JournalError):
        await journal.record(ex.id, [], StateChange(state=State.DELIVERING))
    got = await journal.get(ex.id)
    assert got is not None and got.state is State.REJECTED and got.last_error == {"m": 1}


async def test_claim_takes_expired_leases_and_due_retries_only(journal: Journal) -> None:
    """Leases are judged by expiry alone; retry_wait exchanges wait for next_attempt_at."""
    live, _ = await journal.create(new("live"), owner="w1", lease_until=NOW + 100)
    dead, _ = await journal.create(new("dead"), owner="gone", lease_until=NOW + 5)
    later, _ = await journal.create(new("later"), owner="w1", lease_until=NOW + 100)
    for xid in (later.id,):
        await journal.record(xid, [], StateChange(state=State.QUEUED), owner="w1")
        await journal.record(xid, [], StateChange(state=State.DELIVERING, attempts=1), owner="w1")
        await journal.record(
            xid,
            [],
            StateChange(state=State.RETRY_WAIT, next_attempt_at=NOW + 50, release_lease=True),
            owner="w1",
        )
    first = await journal.claim(owner="w2", now=NOW + 10, lease_until=NOW + 200, limit=10)
    second = await journal.claim(owner="w2", now=NOW + 60, lease_until=NOW + 90, limit=10)
    assert [c.id for c in first] == [dead.id]
    assert {c.id for c in second} == {later.id}
    reclaimed = [e for e in first[0].events if e.kind == "lease_reclaimed"]
    assert reclaimed[0].data["from"] == "gone"
    assert live.id not in {c.id for c in first + second}


async def test_claim_respects_the_limit(journal: Journal) -> None:
    """claim() hands out at most ``limit`` exchanges, oldest first."""
    made = [
        (await journal.create(new(f"k{i}", at=NOW + i), owner="x", lease_until=NOW))[0]
        for i in range(5)
    ]
    got = await journal.claim(owner="w", now=NOW + 10, lease_until=NOW + 40, limit=3)
    assert [g.id for g in got] == [m.id for m in made[:3]]


async def test_renew_extends_only_the_owners_leases(journal: Journal) -> None:
    """Heartbeats renew what the worker holds and nothing else."""
    mine, _ = await journal.create(new("a"), owner="w1", lease_until=NOW + 1)
    theirs, _ = await journal.create(new("b"), owner="w2", lease_until=NOW + 1)
    assert await journal.renew(owner="w1", ids=[mine.id, theirs.id], lease_until=NOW + 100) == 1
    claimed = await journal.claim(owner="w3", now=NOW + 50, lease_until=NOW + 60, limit=10)
    assert [c.id for c in claimed] == [theirs.id]


async def test_many_concurrent_creates_all_commit(journal: Journal) -> None:
    """Hundreds of simultaneous intakes (group-committed) all land, with one conflict among them."""
    await journal.create(new("dup"), owner="w", lease_until=NOW)
    results = await asyncio.gather(
        *[journal.create(new(f"k{i}"), owner="w", lease_until=NOW) for i in range(300)],
        journal.create(new("dup", body="other"), owner="w", lease_until=NOW),
        return_exceptions=True,
    )
    conflicts = [r for r in results if isinstance(r, IdempotencyConflict)]
    assert len(conflicts) == 1
    assert (await journal.counts()) == {"received": 301}


async def test_refusals_are_kept(journal: Journal) -> None:
    """A refused intake request is stored with its body."""
    await journal.refuse(
        Refusal(
            at=NOW,
            remote="127.0.0.1",
            method="POST",
            path="/v1/exchanges",
            status=400,
            problem="malformed-json",
            detail="x",
            idempotency_key="k",
            body=b"{",
            body_bytes=1,
        )
    )


async def test_closed_journal_is_unavailable(journal: Journal) -> None:
    """After close, writes raise JournalUnavailable (never a driver exception)."""
    await journal.close()
    with pytest.raises(JournalUnavailable):
        await journal.create(new(), owner="w", lease_until=NOW)
    await journal.open()


# -- SQLite specifics ----------------------------------------------------------------------------


async def test_sqlite_survives_reopen_with_wal_and_full_sync(tmp_path: Path) -> None:
    """What was committed is there after reopening; the file runs in WAL with synchronous=FULL."""
    path = tmp_path / "durable.sqlite"
    j = SQLiteJournal(path)
    await j.open()
    ex, _ = await j.create(new(), owner="w", lease_until=NOW)
    await j.close()
    j2 = SQLiteJournal(path)
    await j2.open()
    got = await j2.get(ex.id)
    await j2.close()
    assert got is not None and got.application["body"] == "a"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1


async def test_sqlite_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    """Opening a journal in a directory that does not exist names the directory."""
    j = SQLiteJournal(tmp_path / "nope" / "j.sqlite")
    with pytest.raises(JournalUnavailable, match="does not exist"):
        await j.open()


async def test_sqlite_unwritable_file_is_unavailable(tmp_path: Path) -> None:
    """A journal file that is not a database is reported as unavailable, not as a crash."""
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    j = SQLiteJournal(path)
    with pytest.raises(JournalUnavailable):
        await j.open()
