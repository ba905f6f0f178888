"""A delivery attempt whose lease another instance took meanwhile is journalled all the same: the
journal holds every attempt, on SQLite, PostgreSQL and the in-memory journal alike."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from adapters.base import OutboundRequest, Reply
from federation.domain.errors import UnrecognisedReply
from federation.domain.models import Exchange, Outcome, State
from federation.runtime.catalogue import load_catalogue
from federation.runtime.delivery import standing_errors
from federation.runtime.worker import Worker
from federation.testing import MockAdapter, permanent, reply, sequence, transient
from replay.journal import Backend, Journal
from tests.integration.test_background_loops import due

ACCEPTED = reply({"status": "ok", "ref": "HK-1"})


def worker(journal: Journal, catalogue: Any, owner: str, adapter: Any, **options: Any) -> Worker:
    """A worker of instance ``owner`` delivering to hk through ``adapter`` (with any further
    ``options`` of a worker: its clock and sleep, its metrics)."""
    return Worker(
        journal=journal,
        catalogue=lambda: catalogue,
        adapters={"hk": adapter},
        owner=owner,
        lease=30,
        poll_interval=3600,
        **options,
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
    transcript and owner) is journalled all the same, and w2, which claimed before that end was
    written, reads the history again before sending, finds attempt 1 delivered and settles by it:
    it sends nothing, the history shows the one delivered attempt and one submitted step; the
    chain still verifies. (Before, w2 delivered again under the same key.)"""
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
    owners = [(e.data["attempt"], e.data.get("owner")) for e in ends]
    assert owners == [(1, "w1")]
    assert ends[0].data["outcome"] == "delivered" and ends[0].data["response"] == {"status": 200}
    history = done.attempt_history()
    assert [a.outcome for a in history] == [Outcome.DELIVERED]
    assert [s["state"] for s in done.lifecycle()] == ["submitted"]
    assert second.requests == []
    assert {r.idempotency_key for r in first.requests} == {ex.id}
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


# -- the next holder finds the attempt ended: it acts on that end, sending nothing -----------------


def with_callback(root: Path) -> Path:
    """The catalogue at ``root``, gd-portal (the source) told of its exchanges' ends."""
    path = root / "partners.yaml"
    name = "    name: {zh: 广东政务服务网, en: Guangdong Government Services Portal}\n"
    text = path.read_text(encoding="utf-8")
    assert name in text
    callback = "    callback: https://zwfw.gd.gov.cn/cb\n"
    path.write_text(text.replace(name, name + callback, 1), encoding="utf-8")
    return root


async def ended_then_claimed(
    journal: Backend, catalogue: Any, answer: Reply | Exception, key: str
) -> Exchange:
    """w1's attempt ends in ``answer`` after w2 took the lease (w2 then stalls, writing nothing):
    the exchange as w3 claims it once w2's lease ran out, w1's end appended meanwhile."""
    await due(journal, key)
    await worker(
        journal, catalogue, "w1", MockAdapter(taking_over(journal, [], answer))
    ).work_once()
    later = time.time() + 1000
    [claimed] = await journal.claim(owner="w3", now=later, lease_until=later + 600, limit=5)
    assert claimed.state is State.DELIVERING and claimed.attempts == 1
    return claimed


async def worked_by(
    journal: Backend, catalogue: Any, claimed: Exchange, adapter: Any, owner: str = "w3"
) -> Exchange:
    """``claimed`` worked by instance ``owner`` (w3 unless said) through ``adapter`` to its end;
    the exchange as it stands then."""
    taker = worker(journal, catalogue, owner, adapter)
    taker.offer(claimed)
    await taker.stop(grace=10)
    done = await journal.get(claimed.id)
    assert done is not None
    return done


async def test_a_journalled_delivery_is_settled_as_delivered_without_sending_again(
    make_config: Any, journal: Backend
) -> None:
    """w1's delivered end, appended after losing the lease, is settled by the next holder: delivered
    with its mapped receipt, lifecycle submitted, callback armed; nothing sent (a 409 refusal of a
    repeat no longer rejects it)."""
    catalogue = load_catalogue(with_callback(make_config()))
    claimed = await ended_then_claimed(
        journal, catalogue, reply({"ref_no": "HK-1", "status": "ok"}), "settle-1"
    )
    third = MockAdapter(sequence(permanent(409)))
    done = await worked_by(journal, catalogue, claimed, third)
    assert third.requests == []
    assert done.state is State.DELIVERED and done.receipt == {
        "receipt_number": "HK-1",
        "status": "ok",
    }
    assert done.last_error is None and done.attempts == 1
    assert done.lifecycle_state == "submitted" and done.notify_state == "delivered"
    assert [a.outcome for a in done.attempt_history()] == [Outcome.DELIVERED]
    assert [s["state"] for s in done.lifecycle()] == ["submitted"]
    assert (await journal.verify())[1] is None


async def test_a_journalled_delivery_whose_reply_did_not_map_keeps_its_receipt_error(
    make_config: Any, journal: Backend
) -> None:
    """A journalled delivery whose reply did not map is settled as a normal one would be:
    delivered, the receipt error standing as its last error, nothing sent."""
    catalogue = load_catalogue(make_config())
    claimed = await ended_then_claimed(journal, catalogue, ACCEPTED, "settle-2")
    third = MockAdapter(lambda _: ACCEPTED)
    done = await worked_by(journal, catalogue, claimed, third)
    assert third.requests == [] and done.state is State.DELIVERED
    assert done.last_error is not None and done.last_error["kind"] == "receipt"
    assert standing_errors(done)[0] == done.last_error


async def test_a_journalled_transient_failure_is_scheduled_with_its_retry_after(
    make_config: Any, journal: Backend
) -> None:
    """w1's journalled 503 (Retry-After 30 s) puts the exchange in retry_wait for at least the
    partner's 30 s, with the error, its lease released; nothing sent at once."""
    catalogue = load_catalogue(make_config())
    answer = transient(503, retry_after=30)
    claimed = await ended_then_claimed(journal, catalogue, answer, "settle-3")
    third = MockAdapter(lambda _: ACCEPTED)
    before = time.time()
    done = await worked_by(journal, catalogue, claimed, third)
    assert third.requests == []
    assert done.state is State.RETRY_WAIT and done.attempts == 1
    assert done.next_attempt_at is not None and done.next_attempt_at >= before + 30
    assert done.last_error is not None and done.last_error["status"] == 503
    later = done.next_attempt_at + 1
    assert [
        x.id for x in await journal.claim(owner="w4", now=later, lease_until=later + 5, limit=5)
    ] == [done.id]


async def test_a_journalled_transient_failure_that_spends_the_budget_fails_the_exchange(
    make_config: Any, journal: Backend
) -> None:
    """With max_attempts 1, w1's journalled 503 fails the exchange (retries_exhausted, the
    source told); no second attempt."""
    catalogue = load_catalogue(with_callback(make_config(max_attempts=1)))
    claimed = await ended_then_claimed(journal, catalogue, transient(503), "settle-4")
    third = MockAdapter(lambda _: ACCEPTED)
    done = await worked_by(journal, catalogue, claimed, third)
    assert third.requests == [] and done.state is State.FAILED and done.attempts == 1
    assert [e.kind for e in done.events][-1] == "retries_exhausted"
    assert done.notify_state == "failed"


async def test_a_journalled_refusal_rejects_the_exchange(
    make_config: Any, journal: Backend
) -> None:
    """w1's journalled 422 rejects the exchange with that error; nothing sent again."""
    catalogue = load_catalogue(make_config())
    claimed = await ended_then_claimed(journal, catalogue, permanent(422), "settle-5")
    third = MockAdapter(lambda _: ACCEPTED)
    done = await worked_by(journal, catalogue, claimed, third)
    assert third.requests == [] and done.state is State.REJECTED
    assert done.last_error is not None and done.last_error["status"] == 422


async def test_a_journalled_unrecognised_reply_leaves_the_exchange_unconfirmed(
    make_config: Any, journal: Backend
) -> None:
    """w1's journalled reply that no reply rule recognises ends the exchange unconfirmed, as it
    would have: never delivered, never sent again by itself."""
    catalogue = load_catalogue(make_config())
    odd = UnrecognisedReply("partner said 299", partner="mock", operation="send", status=299)
    claimed = await ended_then_claimed(journal, catalogue, odd, "settle-6")
    third = MockAdapter(lambda _: ACCEPTED)
    done = await worked_by(journal, catalogue, claimed, third)
    assert third.requests == [] and done.state is State.UNCONFIRMED
    assert done.last_error is not None and done.last_error["kind"] == "unconfirmed"


class _Stopped(Exception):
    """The worker stops where it would pause before an in-process retry."""


async def _stop(_: float) -> None:
    raise _Stopped


async def test_a_retry_now_left_by_a_stopped_worker_is_decided_again_and_sent(
    make_config: Any, journal: Backend
) -> None:
    """w1 writes a 503 with a retry-now decision and stops before retrying: the next holder decides
    again (still a quick retry), sends attempt 2 and delivers, presuming no unknown outcome."""
    catalogue = load_catalogue(make_config())
    ex = await due(journal, "settle-7")
    first = MockAdapter(sequence(transient(503)))
    w1 = Worker(
        journal=journal,
        catalogue=lambda: catalogue,
        adapters={"hk": first},
        owner="w1",
        lease=30,
        poll_interval=3600,
        sleep=_stop,
    )
    await w1.work_once()
    later = time.time() + 100
    [claimed] = await journal.claim(owner="w3", now=later, lease_until=later + 600, limit=5)
    third = MockAdapter(lambda _: ACCEPTED)
    done = await worked_by(journal, catalogue, claimed, third)
    assert len(first.requests) == 1 and len(third.requests) == 1
    assert done.state is State.DELIVERED and done.attempts == 2 and done.id == ex.id
    outcomes = [a.outcome for a in done.attempt_history()]
    assert outcomes == [Outcome.TRANSIENT_ERROR, Outcome.DELIVERED]
