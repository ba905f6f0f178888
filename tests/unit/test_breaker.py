"""Circuit breaker and rate limit: the rules that protect partners (retry decisions: test_retry)."""

from __future__ import annotations

import asyncio

import pytest

from federation.domain.errors import LeaseLost
from federation.runtime.breaker import (
    LATENCIES_KEPT,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    PartnerGuards,
    RateLimit,
)
from tests.waiting import wait_until


class Clock:
    """A clock the test moves by hand; a sleep on it ends once the clock has got that far."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        entry = (self.now + seconds, asyncio.get_running_loop().create_future())
        self.sleepers.append(entry)
        try:
            await entry[1]
        finally:
            self.sleepers.remove(entry)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for due, woken in self.sleepers:
            if due <= self.now and not woken.done():
                woken.set_result(None)


def test_opens_after_consecutive_transient_failures_only() -> None:
    """N consecutive failures open it; a success in between resets the count."""
    b = CircuitBreaker("hk", BreakerPolicy(failures=3, cool_down=10), clock=Clock())
    b.failure()
    b.failure()
    b.success()
    b.failure()
    b.failure()
    assert b.state is BreakerState.CLOSED
    b.failure()
    assert b.state is BreakerState.OPEN
    assert not b.try_acquire()


def test_half_open_lets_one_probe_then_closes_or_reopens() -> None:
    """After the cool-down one probe goes out; success closes, failure opens again."""
    clock = Clock()
    b = CircuitBreaker("hk", BreakerPolicy(failures=1, cool_down=10, probes=1), clock=clock)
    b.failure()
    clock.now += 9.9
    assert not b.try_acquire()
    clock.now += 0.2
    assert b.try_acquire()  # the probe
    assert b.state is BreakerState.HALF_OPEN
    assert not b.try_acquire()  # nobody else while it is out
    b.failure()
    assert b.state is BreakerState.OPEN
    assert b.reopens_in() == pytest.approx(10)
    clock.now += 10
    assert b.try_acquire()
    b.success()
    assert b.state is BreakerState.CLOSED
    assert b.try_acquire()
    assert b.opened_count == 2


async def test_waiters_are_released_when_it_closes() -> None:
    """Requests waiting on an open breaker wait for the cool-down; then one probe goes out, and
    the rest once it succeeds."""
    clock = Clock()
    b = CircuitBreaker(
        "hk", BreakerPolicy(failures=1, cool_down=5, probes=1), clock=clock, sleep=clock.sleep
    )
    b.failure()
    inside = 0
    answered = asyncio.Event()

    async def request() -> None:
        nonlocal inside
        async with b.admit():
            inside += 1
            await answered.wait()

    waiters = [asyncio.create_task(request()) for _ in range(5)]
    await wait_until(lambda: b.waiting == 5, what="five requests held by the open breaker")
    assert {due for due, _ in clock.sleepers} == {1005.0}  # each waits for the cool-down's end
    assert inside == 0
    clock.advance(5)  # cool-down over: the first waiter is the probe
    await wait_until(lambda: inside == 1, what="the probe to go out")
    await wait_until(lambda: b.waiting == 4, what="the others to wait again")
    assert inside == 1  # only the probe: the others wait for its verdict
    b.success()
    await wait_until(lambda: inside == 5, what="the others to go out once it closed")
    answered.set()
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)


async def test_rate_limit_spaces_requests() -> None:
    """With 50/s and burst 5, five go at once and the sixth waits for a token (20 ms)."""
    clock = Clock()
    limit = RateLimit(50, 5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await asyncio.wait_for(limit.acquire(), timeout=5)  # no waiting within the burst
    sixth = asyncio.create_task(limit.acquire())
    await wait_until(lambda: bool(clock.sleepers), what="the sixth to wait for a token")
    assert clock.sleepers[0][0] == pytest.approx(1000.02)
    assert not sixth.done()  # the clock has not moved: no token yet
    clock.advance(0.025)  # a little over one token's worth
    await asyncio.wait_for(sixth, timeout=5)


def _half_open(clock: Clock, probes: int = 1) -> CircuitBreaker:
    """A breaker that opened and has cooled down: its next request is a probe."""
    b = CircuitBreaker(
        "hk", BreakerPolicy(failures=1, cool_down=10, probes=probes), clock=clock, sleep=clock.sleep
    )
    b.failure()
    clock.advance(10)
    return b


async def test_a_probe_that_never_went_out_gives_its_place_back() -> None:
    """A half-open probe that ends before sending (its lease lost) frees its place: the next
    request goes out instead of the partner's work being held for good."""
    clock = Clock()
    b = _half_open(clock)

    async def lose_the_lease() -> None:
        async with b.admit():
            assert b.state is BreakerState.HALF_OPEN
            raise LeaseLost("taken over before sending")

    with pytest.raises(LeaseLost):
        await lose_the_lease()

    async def next_request() -> None:
        async with b.admit():
            b.success()

    await asyncio.wait_for(next_request(), timeout=5)
    assert b.state is BreakerState.CLOSED


async def test_a_cancelled_probe_gives_its_place_back() -> None:
    """A probe cancelled inside admit() (the worker stopping) lets the next request probe."""
    clock = Clock()
    b = _half_open(clock)
    inside = asyncio.Event()

    async def stuck() -> None:
        async with b.admit():
            inside.set()
            await asyncio.Event().wait()

    probe = asyncio.create_task(stuck())
    await asyncio.wait_for(inside.wait(), timeout=5)
    assert not b.try_acquire()  # the probe is out: nobody else
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert b.try_acquire()


async def test_a_late_probe_frees_no_place_of_a_later_round() -> None:
    """A probe of an earlier half-open round that ends without a verdict leaves the current
    round's probes as they are."""
    clock = Clock()
    b = _half_open(clock)
    async with b.admit():  # round 1's probe, still out when ...
        b.failure()  # ... something else fails: open again
        clock.advance(10)
        assert b.try_acquire()  # round 2's probe
    assert b.state is BreakerState.HALF_OPEN
    assert not b.try_acquire()  # round 2's only probe is still out


def test_a_partners_p95_is_of_its_latest_calls() -> None:
    """The 95th percentile (nearest rank) of the latest calls: none before any call; the
    oldest durations leave once more than LATENCIES_KEPT are known."""
    guards = PartnerGuards(breaker=None, slots=None)  # type: ignore[arg-type]
    assert guards.p95_ms() is None
    guards.latencies.extend(float(n) for n in range(1, 101))
    assert guards.p95_ms() == 95.0
    guards.latencies.extend([1.0] * LATENCIES_KEPT)
    assert guards.p95_ms() == 1.0
