"""Circuit breaker, rate limit and retry policy: the rules that protect partners."""

from __future__ import annotations

import asyncio
import random

import pytest

from federation.config import RetryPolicy
from federation.runtime.breaker import BreakerPolicy, BreakerState, CircuitBreaker, RateLimit


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
    """Requests waiting on an open breaker go out once a probe succeeds."""
    b = CircuitBreaker("hk", BreakerPolicy(failures=1, cool_down=0.05, probes=1))
    b.failure()
    waiters = [asyncio.create_task(b.acquire()) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in waiters)
    await asyncio.sleep(0.1)  # cool-down over: the first waiter is the probe
    done = [w for w in waiters if w.done()]
    assert len(done) == 1
    b.success()
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=1)


async def test_rate_limit_spaces_requests() -> None:
    """With 50/s and burst 5, five go at once and the sixth waits for a token (~20 ms)."""
    clock = Clock()
    limit = RateLimit(50, 5, clock=clock)
    for _ in range(5):
        await asyncio.wait_for(limit.acquire(), timeout=0.5)  # no waiting within the burst
    sixth = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0.05)
    assert not sixth.done()  # the clock has not moved: no token yet
    clock.now += 0.025  # a little over one token's worth
    await asyncio.wait_for(sixth, timeout=0.5)


@pytest.mark.parametrize("attempt", [1, 2, 5, 20])
def test_retry_delay_grows_within_jitter_and_cap(attempt: int) -> None:
    """Backoff doubles per attempt, stays within ±jitter, and never exceeds the cap."""
    policy = RetryPolicy(backoff_base=2, backoff_cap=60, jitter=0.2)
    raw = min(60, 2 * 2 ** (attempt - 1))
    rng = random.Random(attempt)
    for _ in range(100):
        assert raw * 0.8 <= policy.delay(attempt, rng) <= raw * 1.2
