"""Delivery decisions with a MockAdapter, the in-memory journal and a fake clock: no sockets, no waiting."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from federation.domain.ids import new_id
from federation.domain.models import Direction, Exchange, NewExchange, State
from federation.runtime.broker import Broker
from federation.testing import (
    FakeClock,
    InMemoryJournal,
    MockAdapter,
    permanent,
    reply,
    sequence,
    transient,
)
from tests.conftest import HK_APPLICATION, hk_submission
from tests.waiting import wait_for, wait_until

DONE = {State.DELIVERED, State.FAILED, State.REJECTED, State.RETRY_WAIT}
ACCEPTED = reply({"ref_no": "HK-1", "status": "received"})


@contextlib.asynccontextmanager
async def running(root: Path, partner: MockAdapter, clock: FakeClock) -> AsyncIterator[Broker]:
    """A broker on the catalogue at ``root`` whose hk partner is ``partner``, on ``clock``."""
    broker = Broker(
        root=root,
        journal=InMemoryJournal(clock=clock),
        adapters={"hk": partner},
        clock=clock,
        sleep=clock.sleep,
        poll_interval=3600,  # work arrives by submit() and work_once() only
    )
    async with broker.open():
        yield broker


async def settled(broker: Broker, xid: str) -> Exchange:
    """The exchange once its delivery has come to a decision it waits on."""
    return await wait_for(
        lambda: broker.get(xid),
        lambda ex: ex is not None and ex.state in DONE,
        what=f"exchange {xid} to be decided",
    )


def outcomes(ex: Exchange) -> list[str]:
    return [a.outcome.value for a in ex.attempt_history() if a.outcome is not None]


async def test_a_blip_then_success_is_delivered_in_process(
    make_config: Callable[..., Path],
) -> None:
    """A 503 then an acceptance: delivered on the second attempt, with the same key, after one
    short pause on the injected sleep and no journal-scheduled wait."""
    clock = FakeClock()
    partner = MockAdapter(sequence(transient(503), ACCEPTED))
    async with running(make_config(), partner, clock) as broker:
        ex, _ = await broker.submit(hk_submission("blip"))
        done = await settled(broker, ex.id)
    assert done.state is State.DELIVERED
    assert outcomes(done) == ["transient_error", "delivered"]
    assert done.receipt == {"receipt_number": "HK-1", "status": "received"}
    assert [r.idempotency_key for r in partner.requests] == [ex.id, ex.id]
    assert clock.slept == [0.05]
    assert "retry_wait" not in {e.data.get("state") for e in done.events}


async def test_a_refusal_is_rejected_at_once(make_config: Callable[..., Path]) -> None:
    """A 422: rejected after one attempt, the partner's status kept, nothing retried."""
    clock = FakeClock()
    partner = MockAdapter(sequence(permanent(422)))
    async with running(make_config(), partner, clock) as broker:
        ex, _ = await broker.submit(hk_submission())
        done = await settled(broker, ex.id)
    assert done.state is State.REJECTED
    assert done.attempts == 1 and len(partner.requests) == 1
    assert done.last_error is not None and done.last_error["status"] == 422
    assert clock.slept == []


async def test_retries_exhausted_in_process_fail(make_config: Callable[..., Path]) -> None:
    """Always 503 with max_attempts 3: three attempts 50 and 100 ms apart, then failed."""
    clock = FakeClock()
    partner = MockAdapter(sequence(transient(503)))
    async with running(make_config(max_attempts=3), partner, clock) as broker:
        ex, _ = await broker.submit(hk_submission())
        done = await settled(broker, ex.id)
    assert done.state is State.FAILED
    assert outcomes(done) == ["transient_error"] * 3
    assert done.events[-1].kind == "retries_exhausted"
    assert clock.slept == [0.05, 0.1]


async def test_a_scheduled_retry_waits_for_its_time(make_config: Callable[..., Path]) -> None:
    """After the in-process attempts the journal schedules the next; it is not due before its
    time, and at its time it is the last one allowed: failed."""
    clock = FakeClock()
    partner = MockAdapter(sequence(transient(503)))
    async with running(make_config(max_attempts=5), partner, clock) as broker:
        ex, _ = await broker.submit(hk_submission())
        waiting = await settled(broker, ex.id)
        assert waiting.state is State.RETRY_WAIT and waiting.attempts == 4
        assert waiting.next_attempt_at == clock() + 0.05  # backoff_base, no jitter
        assert await broker.worker.work_once() == 0  # not due yet
        clock.advance(0.05)
        assert await broker.worker.work_once() == 1
        done = await broker.get(ex.id)
    assert done is not None and done.state is State.FAILED
    assert len(partner.requests) == 5


async def test_retry_after_schedules_the_next_attempt(make_config: Callable[..., Path]) -> None:
    """A 429 with Retry-After 30 s: no quick retry, the next attempt scheduled 30 s later."""
    clock = FakeClock()
    partner = MockAdapter(sequence(transient(429, retry_after=30.0)))
    async with running(make_config(), partner, clock) as broker:
        ex, _ = await broker.submit(hk_submission())
        waiting = await settled(broker, ex.id)
    assert waiting.state is State.RETRY_WAIT and waiting.attempts == 1
    assert waiting.next_attempt_at == clock() + 30.0


async def test_given_adapters_are_used_started_and_closed(make_config: Callable[..., Path]) -> None:
    """Broker(adapters=…) uses exactly the adapters given (sc has none here) for its lifetime."""
    partner = MockAdapter(sequence(ACCEPTED))
    async with running(make_config(), partner, FakeClock()) as broker:
        assert dict(broker.adapters) == {"hk": partner}
        assert partner.started and not partner.closed
    assert partner.closed


async def test_a_probe_that_lost_its_lease_does_not_hold_the_partner(
    make_config: Callable[..., Path],
) -> None:
    """The half-open breaker's probe loses its lease before sending: the next application is
    the probe instead, and is delivered (the partner's work is not held for good)."""
    clock = FakeClock()
    partner = MockAdapter(sequence(ACCEPTED))
    async with running(make_config(), partner, clock) as broker:
        hk = broker.catalogue.partner("hk")
        assert hk is not None
        breaker = broker.worker.guards(hk).breaker
        for _ in range(hk.breaker.failures):
            breaker.failure()
        clock.advance(hk.breaker.cool_down)  # the next request is the probe
        taken, _ = await broker.journal.create(
            _new("taken-over", clock()), owner="another-instance", lease_until=clock() + 600
        )
        broker.worker.offer(taken)  # its attempt's start is refused: LeaseLost
        await wait_until(lambda: broker.worker.in_flight == 0, what="the lost probe to end")
        ex, _ = await broker.submit(hk_submission("next"))
        done = await settled(broker, ex.id)
    assert done.state is State.DELIVERED
    assert [r.idempotency_key for r in partner.requests] == [ex.id]
    assert breaker.closed


def _new(key: str, now: float) -> NewExchange:
    return NewExchange(
        id=new_id(now),
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="TD-VL-RENEW",
        idempotency_key=key,
        request_hash="sha256:x",
        application=HK_APPLICATION,
        received_at=now,
    )
