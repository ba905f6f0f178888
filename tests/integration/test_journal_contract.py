"""The Journal contract, run against every backend: the embedded SQLite file, the in-memory fake and
PostgreSQL (a fresh schema per test; see tests/integration/pg.py for when it skips or fails)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from federation.domain.errors import (
    CallbackPending,
    IdempotencyConflict,
    JournalError,
    JournalUnavailable,
    LeaseLost,
    LifecycleMoved,
)
from federation.domain.ids import id_floor, new_id
from federation.domain.models import Direction, Event, NewExchange, State, StateChange
from replay import trail
from replay.archive import read_archive, verify_archive
from replay.factory import open_journal
from replay.journal import AuditEntry, Backend, Query, Refusal, TrailQuery
from replay.pgsql import migration_files
from replay.postgres import PostgresJournal
from replay.rules import ENDED
from replay.service import Mode, ReplayService
from replay.sqlite import SQLiteJournal
from tests.integration.pg import BACKENDS, PgSchema, store

Journal = Backend  # every test below runs on each backend, through both faces

NOW = 1_790_000_000.0
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


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
    [kept] = await journal.refusals()
    assert (kept.problem, kept.idempotency_key, kept.body, kept.body_bytes) == (
        "malformed-json",
        "k",
        b"{",
        1,
    )


async def test_closed_journal_is_unavailable(journal: Journal) -> None:
    """After close, writes raise JournalUnavailable (never a driver exception)."""
    await journal.close()
    with pytest.raises(JournalUnavailable):
        await journal.create(new(), owner="w", lease_until=NOW)
    await journal.open()


async def test_record_names_what_refused_it(journal: Journal) -> None:
    """An unknown exchange and an ``expect`` that does not hold are refused with the reason."""
    ex, _ = await journal.create(new(), owner="w1", lease_until=NOW + 30)
    with pytest.raises(JournalError, match="no exchange"):
        await journal.record("01ARZ3NDEKTSV4RRFFQ69G5FAV", [], StateChange(state=State.QUEUED))
    with pytest.raises(JournalError, match="is received"):
        await journal.record(
            ex.id, [], StateChange(state=State.QUEUED, expect=frozenset({State.FAILED}))
        )
    got = await journal.get(ex.id)
    assert got is not None and got.state is State.RECEIVED and len(got.events) == 1


async def test_a_lifecycle_step_is_written_only_over_the_word_it_was_checked_against(
    journal: Journal,
) -> None:
    """expect_lifecycle: the step goes in while the latest word is unchanged; once another
    update changed it, the write is refused (LifecycleMoved) and nothing of it is kept."""
    ex, _ = await journal.create(new(), owner="w1", lease_until=NOW + 30)
    for state in (State.QUEUED, State.DELIVERING):
        await journal.record(ex.id, [], StateChange(state=state), owner="w1")
    await journal.record(
        ex.id, [], StateChange(state=State.DELIVERED, lifecycle_state="submitted"), owner="w1"
    )

    def step(state: str, after: str) -> StateChange:
        return StateChange(
            state=State.DELIVERED,
            expect=frozenset({State.DELIVERED}),
            lifecycle_state=state,
            expect_lifecycle=after,
        )

    await journal.record(
        ex.id, [ev(ex.id, "lifecycle", lifecycle="review")], step("review", "submitted")
    )
    with pytest.raises(LifecycleMoved, match="review"):
        await journal.record(
            ex.id, [ev(ex.id, "lifecycle", lifecycle="approved")], step("approved", "submitted")
        )
    await journal.record(
        ex.id, [ev(ex.id, "lifecycle", lifecycle="refused")], step("refused", "review")
    )
    got = await journal.get(ex.id)
    assert got is not None and got.lifecycle_state == "refused"
    assert [e.data["lifecycle"] for e in got.events if e.kind == "lifecycle"] == [
        "review",
        "refused",
    ]


async def test_an_owner_reclaiming_its_own_lease_leaves_no_event(journal: Journal) -> None:
    """A worker taking back its own expired lease is no handover: no lease_reclaimed event."""
    ex, _ = await journal.create(new(), owner="w1", lease_until=NOW + 1)
    claimed = await journal.claim(owner="w1", now=NOW + 2, lease_until=NOW + 60, limit=10)
    assert [c.id for c in claimed] == [ex.id]
    assert [e.kind for e in claimed[0].events] == ["received"]
    assert await journal.claim(owner="w2", now=NOW + 30, lease_until=NOW + 90, limit=10) == []


async def test_callbacks_are_leased_retried_and_cleared(journal: Journal) -> None:
    """An end state with notify is due once; a failed try comes back at next_at; done clears it."""
    t = time.time() + 10  # notify_at is stamped by the journal's own clock
    ex, _ = await journal.create(new(), owner="w1", lease_until=NOW)
    await journal.record(ex.id, [], StateChange(state=State.REJECTED, notify=True))
    first = await journal.claim_notifications(owner="n1", now=t, lease_until=t + 30, limit=5)
    assert [(c.id, c.notify_state) for c in first] == [(ex.id, "rejected")]
    assert await journal.claim_notifications(owner="n2", now=t, lease_until=t + 30, limit=5) == []
    with pytest.raises(LeaseLost):
        await journal.finish_notification(ex.id, [], owner="n2", done=True)
    tried = ev(ex.id, "callback_failed", status=503)
    await journal.finish_notification(ex.id, [tried], owner="n1", done=False, next_at=t + 100)
    assert (
        await journal.claim_notifications(owner="n2", now=t + 50, lease_until=t + 80, limit=5) == []
    )
    again = await journal.claim_notifications(owner="n2", now=t + 101, lease_until=t + 200, limit=5)
    assert [(c.id, c.notify_attempts) for c in again] == [(ex.id, 1)]
    sent = ev(ex.id, "callback_sent", status=204)
    await journal.finish_notification(ex.id, [sent], owner="n2", done=True)
    assert (
        await journal.claim_notifications(owner="n3", now=t + 999, lease_until=t + 1e4, limit=5)
        == []
    )
    got = await journal.get(ex.id)
    assert got is not None and (got.notify_state, got.notify_attempts) == (None, 2)
    assert [e.kind for e in got.events] == ["received", "callback_failed", "callback_sent"]


async def test_a_write_expecting_quiet_is_refused_while_a_callback_is_pending(
    journal: Journal,
) -> None:
    """expect_quiet: a write goes in while no callback is pending; while one is (here claimed
    by a notifier), it is refused (CallbackPending, naming the mark), nothing of it is kept, and
    the notifier keeps its lease and its mark."""
    t = time.time() + 10  # notify_at is stamped by the journal's own clock
    ex, _ = await journal.create(new(), owner="w1", lease_until=NOW)
    await journal.record(ex.id, [], StateChange(state=State.REJECTED))
    quiet = StateChange(
        state=State.REJECTED,
        expect=frozenset({State.REJECTED}),
        notify=True,
        notify_as="rejected",
        expect_quiet=True,
    )
    await journal.record(ex.id, [ev(ex.id, "callback_replayed", state="rejected")], quiet)
    claimed = await journal.claim_notifications(owner="n1", now=t, lease_until=t + 30, limit=5)
    assert [(c.id, c.notify_state) for c in claimed] == [(ex.id, "rejected")]
    step = replace(quiet, notify_as="lifecycle:completed")
    with pytest.raises(CallbackPending, match=f"exchange {ex.id} .*rejected"):
        await journal.record(ex.id, [ev(ex.id, "callback_replayed", state="x")], step)
    got = await journal.get(ex.id)
    assert got is not None and got.notify_state == "rejected"
    assert [e.kind for e in got.events] == ["received", "callback_replayed"]
    await journal.finish_notification(ex.id, [], owner="n1", done=True)  # its lease is intact
    await journal.record(ex.id, [ev(ex.id, "callback_replayed", state="x")], step)
    done = await journal.get(ex.id)
    assert done is not None and done.notify_state == "lifecycle:completed"


async def test_append_adds_to_the_history_and_moves_nothing_else(journal: Journal) -> None:
    """append chains events onto an exchange's history (verify holds) and checks or moves
    nothing else: a notifier's and a worker's lease, the state and the pending callback mark stay
    theirs; an exchange that does not exist is refused."""
    t = time.time() + 10  # notify_at is stamped by the journal's own clock
    ended, _ = await journal.create(new("ended"), owner="w1", lease_until=NOW)
    await journal.record(ended.id, [], StateChange(state=State.REJECTED, notify=True))
    await journal.claim_notifications(owner="n1", now=t, lease_until=t + 30, limit=5)
    await journal.append(ended.id, [ev(ended.id, "callback_delivered", status=204)])
    got = await journal.get(ended.id)
    assert got is not None and got.state is State.REJECTED
    assert (got.notify_state, got.notify_attempts) == ("rejected", 0)
    assert [e.kind for e in got.events] == ["received", "callback_delivered"]
    assert await journal.claim_notifications(owner="n2", now=t, lease_until=t + 30, limit=5) == []
    await journal.finish_notification(ended.id, [], owner="n1", done=True)  # n1's lease held
    working, _ = await journal.create(new("working"), owner="w1", lease_until=t + 30)
    await journal.append(working.id, [ev(working.id, "attempt_finished", attempt=1)])
    assert await journal.claim(owner="w2", now=t, lease_until=t + 60, limit=5) == []
    await journal.record(working.id, [], StateChange(state=State.QUEUED), owner="w1")
    with pytest.raises(JournalError, match="no exchange 01JD0000000000000000000000"):
        await journal.append("01JD0000000000000000000000", [ev(ended.id, "callback_failed")])
    assert (await journal.verify())[1] is None


async def test_search_filters_and_pages_newest_first(journal: Journal) -> None:
    """Every filter narrows the result; the before cursor pages through all of it, newest first."""
    # Ids made here rather than by new_id, which never goes back in time within a process.
    base = NOW + 86_400
    ids = []
    for i in range(6):
        at = base + i * 60
        item = new(f"k{i}", source="hk-kiosk" if i % 2 else "gd-portal", at=at)
        item = replace(item, id=id_floor(at)[:10] + f"{i + 1:016d}")
        if i == 4:
            item = replace(item, applicant_refs=(b"ref-A123456",))
        ex, _ = await journal.create(item, owner="w", lease_until=NOW)
        ids.append(ex.id)
    await journal.record(
        ids[1], [], StateChange(state=State.REJECTED, last_error={"message": "mark AB1234 unknown"})
    )
    await journal.record(ids[3], [], StateChange(state=State.REJECTED, last_error={"message": "x"}))

    async def found(**kw: Any) -> list[str]:
        return [ex.id for ex in await journal.search(Query(**kw))]

    assert await found() == ids[::-1]
    assert await found(states=("rejected",)) == [ids[3], ids[1]]
    assert await found(source="hk-kiosk") == [ids[5], ids[3], ids[1]]
    assert await found(partner="hk", service="TD-VL-RENEW", idempotency_key="k2") == [ids[2]]
    assert await found(partner="mo") == []
    assert await found(exchange_id=ids[4]) == [ids[4]]
    assert await found(since=base + 60, until=base + 180) == [ids[2], ids[1]]
    assert await found(error="AB1234") == [ids[1]]
    assert await found(applicant_ref=b"ref-A123456") == [ids[4]]
    pages, cursor = [], None
    while page := await found(limit=4, before=cursor):
        pages.append(page)
        cursor = page[-1]
    assert pages == [ids[:1:-1], ids[1::-1]]


async def test_history_carries_sequence_numbers(journal: Journal) -> None:
    """Events come back in journal order with their seq, so a support tool can cite one."""
    ex, _ = await journal.create(new(), owner="w1", lease_until=NOW + 30)
    await journal.record(ex.id, [ev(ex.id, "a"), ev(ex.id, "b")], StateChange(state=State.QUEUED))
    got = await journal.get(ex.id)
    assert got is not None
    seqs = [e.seq for e in got.events]
    assert [e.kind for e in got.events] == ["received", "a", "b"]
    assert all(s is not None for s in seqs) and seqs == sorted(seqs)


async def to_delivering(journal: Journal, key: str = "k", owner: str = "w1") -> str:
    """A new exchange taken as far as an attempt in flight; its id."""
    ex, _ = await journal.create(new(key), owner=owner, lease_until=NOW + 30)
    for state in (State.QUEUED, State.DELIVERING):
        await journal.record(ex.id, [], StateChange(state=state, attempts=1), owner=owner)
    return ex.id


async def test_a_supplement_names_what_it_supplements_from_the_start(journal: Journal) -> None:
    """create() hands back supplement_of as given, so the worker maps a correction round's
    material with its supplement: section; a repeat, get() and claim() say the same."""
    original, _ = await journal.create(new("first"), owner="w1", lease_until=NOW + 30)
    material = replace(new("round-1", at=NOW + 1), supplement_of=original.id)
    made, created = await journal.create(material, owner="w1", lease_until=NOW + 1)
    again, created_again = await journal.create(material, owner="w1", lease_until=NOW + 1)
    got = await journal.get(made.id)
    claimed = await journal.claim(owner="w2", now=NOW + 2, lease_until=NOW + 60, limit=10)
    assert (created, created_again) == (True, False)
    assert made.supplement_of == original.id
    assert again.supplement_of == original.id
    assert got is not None and got.supplement_of == original.id
    assert [(c.id, c.supplement_of) for c in claimed] == [(made.id, original.id)]
    assert original.supplement_of is None


async def test_searches_and_claimed_callbacks_come_without_history_on_every_backend(
    journal: Journal,
) -> None:
    """search() and claim_notifications() read rows alone, as their contract says: no events and
    nothing that only the events hold (the application, supplement_of, the trace context). The
    in-memory journal handed back the whole exchange, so code relying on it passed there alone."""
    original, _ = await journal.create(new("first"), owner="w1", lease_until=NOW + 30)
    material = replace(new("round-1", at=NOW + 1), supplement_of=original.id, traceparent=TRACE)
    made, _ = await journal.create(material, owner="w1", lease_until=NOW + 1)
    await journal.record(made.id, [], StateChange(state=State.REJECTED, notify=True))
    t = time.time() + 10
    found = await journal.search(Query(limit=10))
    claimed = await journal.claim_notifications(owner="n1", now=t, lease_until=t + 30, limit=5)
    assert [x.id for x in found] == [made.id, original.id]
    assert [x.id for x in claimed] == [made.id]
    for x in [*found, *claimed]:
        assert (x.application, x.events, x.supplement_of, x.traceparent) == ({}, (), None, None)
        assert x.mapped is None and x.source == "gd-portal"
    assert claimed[0].notify_state == "rejected" and found[0].state is State.REJECTED
    whole = await journal.get(made.id)
    assert whole is not None and whole.supplement_of == original.id
    assert whole.application == material.application and whole.traceparent == TRACE


async def test_every_ended_state_gives_up_the_lease_and_is_never_claimed(journal: Journal) -> None:
    """delivered, failed, rejected and unconfirmed end the work: no lease, nothing to claim."""
    ended = (State.DELIVERED, State.FAILED, State.REJECTED, State.UNCONFIRMED)
    ids = {}
    for state in ended:
        xid = await to_delivering(journal, key=state.value)
        await journal.record(xid, [], StateChange(state=state), owner="w1")
        ids[state] = xid
    assert await journal.claim(owner="w2", now=NOW + 10_000, lease_until=NOW + 2e4, limit=10) == []
    assert await journal.counts() == {s.value: 1 for s in ended}
    for state, xid in ids.items():
        with pytest.raises(JournalError, match=f"no transition {state.value} → delivering"):
            await journal.record(xid, [], StateChange(state=State.DELIVERING))
    # no lease left to lose: a write fenced by the old owner is refused as a lost lease
    with pytest.raises(LeaseLost):
        await journal.record(
            ids[State.UNCONFIRMED], [], StateChange(state=State.QUEUED), owner="w1"
        )


async def test_an_unconfirmed_reply_is_announced_found_and_replayable(journal: Journal) -> None:
    """unconfirmed: the callback is told so, search finds it by state, and a replay moves it back
    to queued (resend) or received (remap), guarded by the state it was planned from."""
    xid = await to_delivering(journal)
    reply = ev(xid, "attempt_finished", attempt=1, outcome="unknown_outcome")
    await journal.record(
        xid,
        [reply],
        StateChange(
            state=State.UNCONFIRMED, last_error={"message": "reply not recognised"}, notify=True
        ),
        owner="w1",
    )
    t = time.time() + 10
    due = await journal.claim_notifications(owner="n", now=t, lease_until=t + 30, limit=5)
    assert [(c.id, c.notify_state) for c in due] == [(xid, "unconfirmed")]
    await journal.finish_notification(xid, [], owner="n", done=True)
    assert [ex.id for ex in await journal.search(Query(states=("unconfirmed",)))] == [xid]
    assert [ex.id for ex in await journal.search(Query(error="not recognised"))] == [xid]
    plan = await ReplayService(journal).plan(Query(exchange_id=xid), Mode.RESEND)
    assert [ex.id for ex in plan.take] == [xid] and plan.skip == ()
    result = await ReplayService(journal).run(plan, reason="partner confirmed by phone", by="ops")
    assert result.replayed == [xid]
    got = await journal.get(xid)
    assert got is not None and got.state is State.QUEUED
    assert [e.kind for e in got.events][-1] == "replayed"
    assert got.events[-1].data["from_state"] == "unconfirmed"


async def test_replay_takes_ended_exchanges_only(journal: Journal) -> None:
    """The replay plan skips open work, naming every ended state it would have taken."""
    xid = await to_delivering(journal)
    plan = await ReplayService(journal).plan(Query(exchange_id=xid), Mode.REMAP)
    assert plan.take == ()
    assert [why for _, why in plan.skip] == [
        "is delivering: only delivered, failed, rejected or unconfirmed exchanges are replayed"
    ]


async def test_refusals_say_the_same_thing_on_every_backend(journal: Journal) -> None:
    """The reason a guarded write is refused is one text everywhere: the lease, the expected
    state, the partner's latest word, the transition."""
    xid = await to_delivering(journal)
    await journal.record(
        xid, [], StateChange(state=State.DELIVERED, lifecycle_state="submitted"), owner="w1"
    )
    other = await to_delivering(journal, key="other")
    cases = [
        (
            other,
            StateChange(state=State.DELIVERED),
            "w9",
            f"exchange {other} is leased to 'w1' now",
        ),
        (
            xid,
            StateChange(state=State.QUEUED, expect=frozenset({State.FAILED, State.REJECTED})),
            None,
            f"exchange {xid} is delivered, expected one of failed, rejected",
        ),
        (
            xid,
            StateChange(
                state=State.DELIVERED, lifecycle_state="approved", expect_lifecycle="review"
            ),
            None,
            f"exchange {xid} is submitted at the partner now, not review",
        ),
        (
            xid,
            StateChange(state=State.RETRY_WAIT),
            None,
            f"exchange {xid}: no transition delivered → retry_wait",
        ),
    ]
    for exchange_id, change, owner, message in cases:
        with pytest.raises(JournalError) as refused:
            await journal.record(exchange_id, [ev(exchange_id, "x")], change, owner=owner)
        assert str(refused.value) == message
    got = await journal.get(xid)
    assert got is not None and "x" not in [e.kind for e in got.events]


async def test_a_write_with_lease_until_extends_the_lease(journal: Journal) -> None:
    """record(lease_until=…) keeps the exchange with its owner past the first lease's end."""
    ex, _ = await journal.create(new(), owner="w1", lease_until=NOW + 5)
    await journal.record(
        ex.id, [], StateChange(state=State.QUEUED), owner="w1", lease_until=NOW + 100
    )
    assert await journal.claim(owner="w2", now=NOW + 50, lease_until=NOW + 60, limit=5) == []
    taken = await journal.claim(owner="w2", now=NOW + 101, lease_until=NOW + 160, limit=5)
    assert [c.id for c in taken] == [ex.id]


async def test_search_by_lifecycle_and_page_size(journal: Journal) -> None:
    """Where the application stands at the partner is a filter; a page holds 1 to 1000."""
    xid = await to_delivering(journal)
    await journal.record(
        xid, [], StateChange(state=State.DELIVERED, lifecycle_state="accepted"), owner="w1"
    )
    for i in range(3):
        await journal.create(new(f"more{i}"), owner="w", lease_until=NOW)
    assert [ex.id for ex in await journal.search(Query(lifecycle=("accepted", "review")))] == [xid]
    assert await journal.search(Query(lifecycle=("review",))) == []
    assert len(await journal.search(Query(limit=0))) == 1
    assert len(await journal.search(Query(limit=5000))) == 4


async def test_verify_holds_and_migrate_after_open_has_nothing_to_do(journal: Journal) -> None:
    """Every event written checks out in the hash chain; an open journal is fully migrated."""
    xid = await to_delivering(journal)
    await journal.record(xid, [ev(xid, "attempt_finished")], StateChange(state=State.DELIVERED))
    count, broken = await journal.verify()
    # received, two row changes without events of their own (each chained as a ~state event)
    # and attempt_finished
    assert (count, broken) == (4, None)
    assert await journal.migrate() == []


async def test_archive_takes_every_ended_state_and_leaves_open_work(
    journal: Journal, tmp_path: Path
) -> None:
    """Ended exchanges (unconfirmed among them) leave for the archive; open work and an ended
    exchange with its callback still due stay; the chain still verifies across the gap."""
    kept = await to_delivering(journal, key="open")
    gone = []
    for state in (State.DELIVERED, State.FAILED, State.REJECTED, State.UNCONFIRMED):
        xid = await to_delivering(journal, key=state.value)
        await journal.record(xid, [ev(xid, "done")], StateChange(state=state), owner="w1")
        gone.append(xid)
    waiting = await to_delivering(journal, key="callback")
    await journal.record(waiting, [], StateChange(state=State.FAILED, notify=True), owner="w1")
    out = tmp_path / "archive.jsonl.gz"
    exchanges, events = await journal.archive(older_than=time.time() + 10, out=out)
    assert (exchanges, events) == (4, 4 * 4)  # received, two ~state, done
    left = {ex.id for ex in await journal.search(Query())}
    assert left == {kept, waiting}
    assert verify_archive(out) == (4, 16, None)
    assert sorted(a["exchange"]["state"] for a in read_archive(out)) == [
        "delivered",
        "failed",
        "rejected",
        "unconfirmed",
    ]
    assert await journal.get(gone[0]) is None
    count, broken = await journal.verify()
    # tombstones keep the chain whole: 3 + 4 of the open exchanges, 16 archived, 4 ~archived
    assert (count, broken) == (27, None)
    with pytest.raises(FileExistsError):
        await journal.archive(older_than=time.time() + 10, out=out)


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


async def test_refusals_read_back_newest_first(journal: Journal) -> None:
    """Refused requests come back newest first with their bodies, even a path holding a NUL."""
    for n, path in enumerate(["/v1/exchanges", "/v1/\x00exchanges", "/v1/x"]):
        await journal.refuse(
            Refusal(
                at=NOW + n,
                remote="127.0.0.1",
                method="POST",
                path=path,
                status=400,
                problem="malformed-json",
                detail=f"try {n}",
                idempotency_key=None,
                body=b"{\x00",
                body_bytes=2,
            )
        )
    assert [r.detail for r in await journal.refusals(limit=2)] == ["try 2", "try 1"]
    got = (await journal.refusals())[1:]
    assert [(r.detail, r.body, r.idempotency_key) for r in got] == [
        ("try 1", b"{\x00", None),
        ("try 0", b"{\x00", None),
    ]
    assert got[0].path.startswith("/v1/") and got[0].path.endswith("exchanges")


async def test_sqlite_migrate_without_open(tmp_path: Path) -> None:
    """`tongban journal migrate` on a new SQLite file applies every file once, then nothing."""
    path = tmp_path / "new.sqlite"
    applied = await SQLiteJournal(path).migrate()
    assert applied[0] == "0001_initial.sql" and applied[-1] == "0016_lifecycle_steps.sql"
    assert await SQLiteJournal(path).migrate() == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_archive_index_covers_every_ended_state(backend: str, tmp_path: Path) -> None:
    """After migrating, the partial index archive walks lists every ended state, unconfirmed too
    (an index whose list misses a state the query names is not used for it)."""
    async with store(backend, tmp_path) as where:
        j = where.journal()
        await j.migrate()
        if backend == "sqlite":
            sql = "SELECT sql FROM sqlite_master WHERE name = 'exchanges_closed'"
        else:
            sql = "SELECT indexdef FROM pg_indexes WHERE indexname = 'exchanges_closed'"
        definition = await where.fetchval(sql)
    assert all(f"'{s.value}'" in definition for s in ENDED), definition


# -- PostgreSQL specifics ------------------------------------------------------------------------


async def test_pg_concurrent_claims_never_share_an_exchange(postgres: PgSchema) -> None:
    """Two instances (two pools), four claimers each, claiming at once: no exchange twice.

    First with long leases (each exchange must be handed out exactly once), then for many rounds
    with leases that expire between rounds: within a round no exchange has two holders, and every
    handover recorded in the journal continues from the holder before.
    """
    a, b = postgres.journal(pool_size=4), postgres.journal(pool_size=4)
    await a.open()
    await b.open()
    try:
        ids = []
        for i in range(0, 400, 50):
            made = await asyncio.gather(
                *[
                    a.create(new(f"k{n}", at=NOW + n), owner="intake", lease_until=NOW)
                    for n in range(i, i + 50)
                ]
            )
            ids += [ex.id for ex, _ in made]
        claimers = [(j, f"{name}{k}") for j, name in ((a, "a"), (b, "b")) for k in range(4)]

        async def round_(now: float, lease_until: float, limit: int) -> list[list[str]]:
            got = await asyncio.gather(
                *[
                    j.claim(owner=owner, now=now, lease_until=lease_until, limit=limit)
                    for j, owner in claimers
                ]
            )
            return [[ex.id for ex in batch] for batch in got]

        handed_out: list[str] = []
        while batches := [x for batch in await round_(NOW + 10, NOW + 10_000, 7) for x in batch]:
            handed_out += batches
        assert sorted(handed_out) == sorted(ids)  # every one, exactly once

        for r in range(25):
            now = NOW + 20_000 + r * 10
            batches = await round_(now, now + 5, 30)
            flat = [x for batch in batches for x in batch]
            assert len(flat) == len(set(flat)), f"round {r}: an exchange had two holders"
            assert len(flat) == min(len(ids), 30 * len(claimers))

        for xid in ids:
            got = await b.get(xid)
            assert got is not None
            handovers = [e.data for e in got.events if e.kind == "lease_reclaimed"]
            assert handovers[0]["from"] == "intake"
            for before, after in itertools.pairwise(handovers):
                assert after["from"] == before["to"]
        assert (await a.verify()) == (await b.verify())
        count, broken = await a.verify()
        assert broken is None and count > len(ids)
    finally:
        await a.close()
        await b.close()


async def test_pg_a_lease_is_taken_over_only_after_it_expires(postgres: PgSchema) -> None:
    """Instance B gets A's exchange only once A's lease has run out; then A is fenced off."""
    a, b = postgres.journal(), postgres.journal()
    await a.open()
    await b.open()
    try:
        ex, _ = await a.create(new(), owner="a", lease_until=NOW)
        assert [c.id for c in await a.claim(owner="a", now=NOW + 1, lease_until=NOW + 30, limit=5)]
        assert await a.renew(owner="a", ids=[ex.id], lease_until=NOW + 40) == 1
        for now in (NOW + 2, NOW + 39, NOW + 40):  # a lease ending at 40 is still held at 40
            assert await b.claim(owner="b", now=now, lease_until=now + 30, limit=5) == []
        await a.record(ex.id, [], StateChange(state=State.QUEUED), owner="a")
        taken = await b.claim(owner="b", now=NOW + 40.001, lease_until=NOW + 70, limit=5)
        assert [c.id for c in taken] == [ex.id]
        assert taken[0].events[-1].data == {"from": "a", "to": "b", "state": "queued"}
        with pytest.raises(LeaseLost, match="leased to 'b'"):
            await a.record(ex.id, [], StateChange(state=State.DELIVERING), owner="a")
        assert await a.renew(owner="a", ids=[ex.id], lease_until=NOW + 100) == 0
        await b.record(ex.id, [], StateChange(state=State.DELIVERING, attempts=1), owner="b")
    finally:
        await a.close()
        await b.close()


async def test_pg_instances_starting_together_migrate_once(postgres: PgSchema) -> None:
    """Five instances opening one empty schema at once: each migration is applied exactly once."""
    journals = [postgres.journal(pool_size=2) for _ in range(5)]
    await asyncio.gather(*[j.open() for j in journals])
    try:
        assert await journals[0].migrate() == []  # nothing left to do
        created = await asyncio.gather(
            *[j.create(new(f"k{i}"), owner="w", lease_until=NOW) for i, j in enumerate(journals)]
        )
        assert all(fresh for _, fresh in created)
    finally:
        await asyncio.gather(*[j.close() for j in journals])
    versions = await postgres.fetchval(
        "SELECT array_agg(version ORDER BY version) FROM schema_migrations"
    )
    assert versions == [n for n, _, _ in migration_files()]


async def test_pg_migrate_without_open(postgres: PgSchema) -> None:
    """`tongban journal migrate` applies the files to an empty schema and reports them."""
    assert await postgres.journal().migrate() == [name for _, name, _ in migration_files()]
    assert await postgres.journal().migrate() == []


async def test_pg_database_errors_are_journal_unavailable(postgres: PgSchema) -> None:
    """A server that refuses connections or a broken schema surfaces as JournalUnavailable."""
    nowhere = PostgresJournal("postgresql://tongban:s3cret@127.0.0.1:1/test")
    with pytest.raises(JournalUnavailable) as refused:
        await nowhere.open()
    assert "s3cret" not in str(refused.value)
    j = postgres.journal()
    await j.open()
    try:
        await j.ping()
        await postgres.execute("ALTER TABLE exchanges RENAME TO exchanges_gone")
        with pytest.raises(JournalUnavailable) as broken:
            await j.create(new(), owner="w", lease_until=NOW)
        assert broken.value.__cause__ is not None
    finally:
        await j.close()


async def test_pg_a_lost_connection_is_unavailable_then_recovers(postgres: PgSchema) -> None:
    """Connections cut by the server (a restart, a failover) fail one call, not the journal."""
    tagged = replace(postgres, dsn=f"{postgres.dsn}?application_name={postgres.schema}")
    j = tagged.journal(pool_size=2)
    await j.open()
    try:
        await j.create(new("before"), owner="w", lease_until=NOW)
        await postgres.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
            postgres.schema,
        )
        outcomes = []
        for i in range(3):
            try:
                await j.create(new(f"after{i}"), owner="w", lease_until=NOW)
                outcomes.append("ok")
            except JournalUnavailable:
                outcomes.append("unavailable")
        assert outcomes[-1] == "ok"
        assert (await j.counts())["received"] == 1 + outcomes.count("ok")
    finally:
        await j.close()


async def test_pg_brokers_need_no_ddl_rights_once_migrated(postgres: PgSchema) -> None:
    """After `tongban journal migrate`, a role with table rights only can open and write."""
    role = f"tongban_app_{postgres.schema[-12:]}"
    await postgres.execute(f"CREATE ROLE {role} LOGIN")
    try:
        await postgres.journal().migrate()
        await postgres.execute(f'GRANT USAGE ON SCHEMA "{postgres.schema}" TO {role}')
        await postgres.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{postgres.schema}"'
            f" TO {role}"
        )
        parts = urlsplit(postgres.dsn)
        dsn = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))
        j = PostgresJournal(dsn, schema=postgres.schema, pool_size=2)
        await j.open()
        try:
            _, created = await j.create(new(), owner="w", lease_until=NOW)
        finally:
            await j.close()
        assert created
    finally:
        await postgres.execute(f"DROP OWNED BY {role}")
        await postgres.execute(f"DROP ROLE {role}")


# -- the audit trail -----------------------------------------------------------------------------


def entry(n: int, **changes: Any) -> AuditEntry:
    """An audit entry at NOW + n."""
    fields: dict[str, Any] = {
        "at": NOW + n,
        "who": "chan-tm",
        "role": "support",
        "action": "reveal",
        "target": f"exchange-{n}",
        "remote": "10.0.0.7",
        "reason": "applicant called about 陳大文",
    }
    return AuditEntry(**(fields | changes))


async def test_audit_entries_are_kept_in_the_chain_and_found_newest_first(
    journal: Journal,
) -> None:
    """Entries come back as written, newest first, filtered; they are chained (verify counts
    them) and never part of an exchange's history."""
    xid = await to_delivering(journal)
    for n in range(3):
        await journal.note(entry(n))
    await journal.note(entry(3, who="ho-au", role="auditor", action="audit", reason=""))
    count_before = (await journal.verify())[0]
    assert [e.target for e in await journal.trail(TrailQuery())] == [
        "exchange-3",
        "exchange-2",
        "exchange-1",
        "exchange-0",
    ]
    assert await journal.trail(TrailQuery(who="ho-au")) == [
        entry(3, who="ho-au", role="auditor", action="audit", reason="")
    ]
    assert [e.target for e in await journal.trail(TrailQuery(action="reveal", limit=2))] == [
        "exchange-2",
        "exchange-1",
    ]
    assert [e.at for e in await journal.trail(TrailQuery(since=NOW + 1, until=NOW + 3))] == [
        NOW + 2,
        NOW + 1,
    ]
    exchange = await journal.get(xid)
    assert exchange is not None and all(e.kind != "~audit" for e in exchange.events)
    assert (await journal.verify()) == (count_before, None)
    assert count_before == 3 + 4  # received, two ~state, four ~audit


async def test_a_long_trail_is_read_a_page_at_a_time_and_still_finds_every_match(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of 3 entries (PostgreSQL reads the trail a page at a time), a query whose
    matches are spread over several pages finds all of them, newest first, and stops at its
    limit; one that matches nothing reads to the end and finds nothing."""
    monkeypatch.setattr(trail, "PAGE", 3)
    for n in range(10):
        await journal.note(entry(n, who="ho-au" if n % 4 == 0 else "chan-tm"))
    found = await journal.trail(TrailQuery(who="ho-au"))
    assert [e.target for e in found] == ["exchange-8", "exchange-4", "exchange-0"]
    assert [e.at for e in await journal.trail(TrailQuery(limit=5))] == [
        NOW + n for n in (9, 8, 7, 6, 5)
    ]
    assert [e.target for e in await journal.trail(TrailQuery(who="chan-tm", limit=4))] == [
        "exchange-9",
        "exchange-7",
        "exchange-6",
        "exchange-5",
    ]
    assert await journal.trail(TrailQuery(who="nobody")) == []
    assert await journal.trail(TrailQuery(limit=0)) == []  # the same on every backend


async def test_audit_entries_are_sealed_at_rest(tmp_path: Path) -> None:
    """On SQLite, an entry's reason (which may name an applicant) is not in the file in clear."""
    j = open_journal(tmp_path / "sealed.sqlite")
    await j.open()
    try:
        await j.note(entry(0))
    finally:
        await j.close()
    raw = _bytes_of(tmp_path, "sealed.sqlite*")
    assert "陳大文".encode() not in raw and b"10.0.0.7" not in raw


def _bytes_of(folder: Path, pattern: str) -> bytes:
    """Every byte of the files ``pattern`` names in ``folder``."""
    return b"".join(p.read_bytes() for p in folder.glob(pattern) if p.is_file())


async def test_an_edited_audit_entry_breaks_verify(tmp_path: Path) -> None:
    """Deleting an audit entry from the SQLite file is found by verify."""
    path = tmp_path / "edited.sqlite"
    j = open_journal(path)
    await j.open()
    for n in range(3):
        await j.note(entry(n))
    await j.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM events WHERE seq = 2")
    j = open_journal(path)
    try:
        await j.open()
        _, broken = await j.verify()
    except JournalError as exc:  # the broken head may already refuse the open
        broken = exc  # type: ignore[assignment]
    finally:
        await j.close()
    assert broken is not None
