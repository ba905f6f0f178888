"""Per-partner circuit breaker and rate limit: protect a partner that is down or overloaded.

The breaker opens after ``failures`` consecutive transient failures; while open, nothing is sent
and exchanges wait (in memory, holding their leases) instead of burning attempts. After
``cool_down`` it lets ``probes`` requests through (half-open): a success closes it, a failure opens it
again. It is per broker instance: each instance learns on its own that a partner is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Callable
from typing import Any

from federation.config import BreakerPolicy
from federation.logging import get_logger


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """The breaker for one partner."""

    def __init__(
        self,
        partner: str,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.partner = partner
        self.policy = policy
        self._clock = clock
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.opened_count = 0
        self._probes_out = 0
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
        """May a request go out now? (A half-open breaker lets only its probes through.)"""
        if self.state is BreakerState.OPEN and self.reopens_in() == 0.0:
            self._set(BreakerState.HALF_OPEN)
            self._probes_out = 0
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and self._probes_out < self.policy.probes:
            self._probes_out += 1
            return True
        return False

    async def acquire(self) -> None:
        """Wait until a request may go out."""
        while not self.try_acquire():
            changed = self._changed
            wait = self.reopens_in() or 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=wait)

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

    def release_probe(self) -> None:
        """A probe that ended without an answer about the partner (e.g. a mapping problem)."""
        if self.state is BreakerState.HALF_OPEN and self._probes_out > 0:
            self._probes_out -= 1

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
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._clock = clock
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
                await asyncio.sleep((1 - self._tokens) / self.rate)
