"""Per-partner circuit breaker and rate limit: protect a partner that is down or overloaded.

The breaker opens after ``failures`` consecutive transient failures; while open, nothing is sent
and exchanges wait (in memory, holding their leases) instead of burning attempts. After
``cool_down`` it lets ``probes`` requests through (half-open): a success closes it, a failure opens it
again. A request goes out inside :meth:`CircuitBreaker.admit`; a probe that leaves it without a
verdict (lease lost, cancelled, refused before sending) gives its place back, so a partner's work is
never held by a probe that never went out. It is per broker instance: each instance learns on its
own that a partner is down. Both wait on the clock and the sleep they are given.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from federation.config import BreakerPolicy, Partner
from federation.logging import get_logger

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class _Leave:
    """Leave to send one request: a probe of half-open round ``round``, or (None) a closed pass."""

    round: int | None


class CircuitBreaker:
    """The breaker for one partner."""

    def __init__(
        self,
        partner: str,
        policy: BreakerPolicy,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.partner = partner
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.opened_count = 0
        self.waiting = 0  # requests held while it is open
        self._probes_out = 0
        self._round = 0  # half-open rounds so far: a probe gives its place back in its own only
        self._changed = asyncio.Event()
        self._log = get_logger(component="breaker", partner=partner)

    def _set(self, state: BreakerState) -> None:
        if state is self.state:
            return
        self._log.warning("breaker_" + state.value, failures=self.consecutive_failures)
        self.state = state
        if state is BreakerState.OPEN:
            self.opened_at = self._clock()
            self.opened_count += 1
        if state is BreakerState.HALF_OPEN:
            self._round += 1
            self._probes_out = 0
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self.state is BreakerState.CLOSED

    def reopens_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.state is not BreakerState.OPEN or self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.policy.cool_down - self._clock())

    def try_acquire(self) -> bool:
        """May a request go out now? Takes a half-open probe's place if so, for good: requests
        go out inside :meth:`admit`, which gives an unanswered probe's place back (tests use this
        to drive the states)."""
        return self._take() is not None

    @contextlib.asynccontextmanager
    async def admit(self, held: Callable[[], Awaitable[None]] | None = None) -> AsyncIterator[None]:
        """Leave to send one request for the length of the block, waiting while the breaker is
        open (``held`` is awaited once before such a wait). A half-open probe that leaves the block
        without :meth:`success` or :meth:`failure` gives its place back."""
        leave = self._take()
        if leave is None:
            if held is not None:
                await held()
            leave = await self._wait_take()
        try:
            yield
        finally:
            self._give_back(leave)

    def _take(self) -> _Leave | None:
        if self.state is BreakerState.OPEN and self.reopens_in() == 0.0:
            self._set(BreakerState.HALF_OPEN)
        if self.state is BreakerState.CLOSED:
            return _Leave(None)
        if self.state is BreakerState.HALF_OPEN and self._probes_out < self.policy.probes:
            self._probes_out += 1
            return _Leave(self._round)
        return None

    async def _wait_take(self) -> _Leave:
        self.waiting += 1
        try:
            while (leave := self._take()) is None:
                await self._changed_or_slept(self.reopens_in() or 1.0)
            return leave
        finally:
            self.waiting -= 1

    async def _changed_or_slept(self, seconds: float) -> None:
        """Until the state changes or ``seconds`` pass on the injected sleep."""
        changed = asyncio.ensure_future(self._changed.wait())
        slept = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait((changed, slept), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (changed, slept):
                task.cancel()
            await asyncio.gather(changed, slept, return_exceptions=True)

    def _give_back(self, leave: _Leave) -> None:
        """Still half-open in the probe's own round: it had no verdict, its place is free again."""
        if leave.round == self._round and self.state is BreakerState.HALF_OPEN:
            self._probes_out = max(0, self._probes_out - 1)
            self._changed.set()
            self._changed = asyncio.Event()

    def success(self) -> None:
        self.consecutive_failures = 0
        if self.state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def failure(self) -> None:
        """A transient failure (permanent refusals say nothing about the partner's health)."""
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.consecutive_failures >= self.policy.failures
        ):
            self._set(BreakerState.OPEN)

    def view(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "reopens_in_s": round(self.reopens_in(), 3),
            "times_opened": self.opened_count,
        }


class RateLimit:
    """A token bucket: at most ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._at = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for a token (callers queue fairly behind each other)."""
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
                self._at = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self.rate)


LATENCIES_KEPT = 500  # calls per partner whose durations make its p95


@dataclass
class PartnerGuards:
    """What protects one partner inside this instance: breaker, rate limit, concurrency slots."""

    breaker: CircuitBreaker
    slots: asyncio.Semaphore
    rate: RateLimit | None = None
    # the durations of this instance's latest calls to the partner (ms), for its p95
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))

    def p95_ms(self) -> float | None:
        """The 95th percentile (nearest rank) of the latest calls' durations, None before any."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def waiting(self) -> int:
        """Exchanges held by the open breaker."""
        return self.breaker.waiting

    @classmethod
    def for_partner(
        cls, partner: Partner, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> PartnerGuards:
        rate = partner.rate_limit
        return cls(
            breaker=CircuitBreaker(partner.id, partner.breaker, clock=clock, sleep=sleep),
            slots=asyncio.Semaphore(partner.concurrency),
            rate=RateLimit(rate.per_second, rate.burst, clock=clock, sleep=sleep) if rate else None,
        )
