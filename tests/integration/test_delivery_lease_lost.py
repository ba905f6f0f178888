"""A delivery attempt whose lease another instance took meanwhile is journalled all the same: the
journal holds every attempt, on SQLite, PostgreSQL and the in-memory journal alike."""

from __future__ import annotations

import time
from typing import Any

from adapters.base import OutboundRequest, Reply
from federation.domain.models import Exchange, Outcome, State
from federation.runtime.catalogue import load_catalogue
from federation.runtime.worker import Worker
from federation.testing import MockAdapter, reply, transient
from replay.journal import Backend
from tests.integration.test_background_loops import due

ACCEPTED = reply({"status": "ok", "ref": "HK-1"})


def worker(journal: Backend, catalogue: Any, owner: str, adapter: MockAdapter) -> Worker:
    """A worker of instance ``owner`` delivering to hk through ``adapter``."""
    return Worker(
        journal=journal,
        catalogue=lambda: catalogue,
        adapters={"hk": adapter},
        owner=owner,
        lease=30,
        poll_interval=3600,
    )


def taking_over(journal: Backend, taken: list[Exchange], answer: Reply | Exception) -> Any:
    """A partner that answers ``answer`` once another instance (w2) has taken the exchange's
    lease, as if this one stalled past it while the request was on the wire."""

    async def handle(_: OutboundRequest) -> Reply:
        later = time.time() + 100  # w1's lease has run out by then
        taken.extend(await journal.claim(owner="w2", now=later, lease_until=later + 600, limit=5))
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle


async def test_an_attempt_delivered_after_the_lease_was_taken_is_still_journalled(
    make_config: Any, journal: Backend
) -> None:
    """w1's attempt reaches the partner while w2 takes the lease: w1's attempt_finished (with its
    transcript and owner) is journalled all the same, w2 delivers again under the same key, and
    the history shows attempt 1 delivered (not the unknown outcome w2 presumed), attempt 2
    delivered, and one submitted step; the chain still verifies."""
    catalogue = load_catalogue(make_config())
    taken: list[Exchange] = []
    first = MockAdapter(taking_over(journal, taken, ACCEPTED))
    ex = await due(journal, "lease-lost-1")
    assert await worker(journal, catalogue, "w1", first).work_once() == 1
    assert [t.id for t in taken] == [ex.id]
    mid = await journal.get(ex.id)
    assert mid is not None and mid.state is State.DELIVERING  # the row is w2's to move
    second = MockAdapter(lambda _: ACCEPTED)
    w2 = worker(journal, catalogue, "w2", second)
    w2.offer(taken[0])
    await w2.stop(grace=10)
    done = await journal.get(ex.id)
    assert done is not None and done.state is State.DELIVERED
    ends = [e for e in done.events if e.kind == "attempt_finished"]
    # w2 claimed before w1's end was written: it presumed attempt 1's end (unknown, no owner)
    owners = [(e.data["attempt"], e.data.get("owner")) for e in ends]
    assert owners == [(1, "w1"), (1, None), (2, "w2")]
    assert ends[0].data["outcome"] == "delivered" and ends[0].data["response"] == {"status": 200}
    history = done.attempt_history()
    assert [a.outcome for a in history] == [Outcome.DELIVERED, Outcome.DELIVERED]
    assert [s["state"] for s in done.lifecycle()] == ["submitted"]
    assert {r.idempotency_key for r in first.requests + second.requests} == {ex.id}
    assert (await journal.verify())[1] is None


async def test_a_failed_attempt_after_the_lease_was_taken_is_journalled_without_a_decision(
    make_config: Any, journal: Backend
) -> None:
    """w1's attempt fails (503) while w2 takes the lease: its attempt_finished with the error is
    journalled, but not what w1 would have decided (no retry_wait, no retries_exhausted): the row
    stays w2's, delivering, under w2's lease."""
    catalogue = load_catalogue(make_config(max_attempts=1))
    taken: list[Exchange] = []
    first = MockAdapter(taking_over(journal, taken, transient(503)))
    ex = await due(journal, "lease-lost-2")
    await worker(journal, catalogue, "w1", first).work_once()
    got = await journal.get(ex.id)
    assert got is not None and got.state is State.DELIVERING and got.attempts == 1
    kinds = [e.kind for e in got.events]
    assert "retries_exhausted" not in kinds and kinds[-1] == "attempt_finished"
    [attempt] = got.attempt_history()
    assert attempt.outcome is Outcome.TRANSIENT_ERROR and attempt.error is not None
    assert attempt.error["status"] == 503
    later = time.time() + 100
    assert await journal.claim(owner="w3", now=later, lease_until=later + 5, limit=5) == []
    assert (await journal.verify())[1] is None
