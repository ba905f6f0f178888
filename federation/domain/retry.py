"""Retry decisions: when a failed delivery or callback is tried again, and when it has had enough.

One question, one answer: :meth:`RetryStrategy.decide` takes what went wrong (:class:`Failure`),
which attempt it was and how long the work has been going on, and says :class:`RetryNow` (in
process, after a short pause), :class:`RetryLater` (the journal schedules it), :class:`Fail` (the
strategy is spent) or :class:`Reject` (retrying cannot help). Strategies are built from small
values, as in tenacity: waits add up (``wait_exponential(2, cap=60).jittered(0.2) + wait_fixed(1)``)
and stops combine (``stop_after_attempt(8) | stop_after_delay(86400)``). Nothing here sleeps or reads
a clock; the caller does both, so tests decide without waiting.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# The strategies are named in lower case, like tenacity's: they read as phrases when combined.

_RNG = random.Random()

# -- waits: seconds before retry number n (1-based) ---------------------------------------------


class Wait:
    """Seconds to wait before retry number ``n`` (1-based); waits add up with ``+``."""

    def __call__(self, n: int, rng: random.Random) -> float:
        raise NotImplementedError

    def __add__(self, other: Wait) -> Wait:
        return wait_sum((self, other))

    def jittered(self, spread: float) -> Wait:
        """This wait, drawn uniformly within ± ``spread`` (a fraction) of itself."""
        return wait_jittered(self, spread) if spread else self


@dataclass(frozen=True)
class wait_fixed(Wait):
    """The same pause every time."""

    seconds: float

    def __call__(self, n: int, rng: random.Random) -> float:
        return self.seconds


@dataclass(frozen=True)
class wait_exponential(Wait):
    """``base``, then doubling per retry, never more than ``cap``."""

    base: float
    cap: float = math.inf

    def __call__(self, n: int, rng: random.Random) -> float:
        return min(self.cap, self.base * 2.0 ** max(0, n - 1))


@dataclass(frozen=True)
class wait_random(Wait):
    """A uniform draw between ``low`` and ``high``."""

    low: float
    high: float

    def __call__(self, n: int, rng: random.Random) -> float:
        return self.low + rng.random() * (self.high - self.low)


@dataclass(frozen=True)
class wait_jittered(Wait):
    """Another wait, spread uniformly within ± ``spread`` of its value (never below zero)."""

    inner: Wait
    spread: float

    def __call__(self, n: int, rng: random.Random) -> float:
        raw = self.inner(n, rng)
        return max(0.0, raw * (1.0 - self.spread + 2.0 * self.spread * rng.random()))


@dataclass(frozen=True)
class wait_sum(Wait):
    """Several waits added together."""

    parts: tuple[Wait, ...]

    def __call__(self, n: int, rng: random.Random) -> float:
        return sum(part(n, rng) for part in self.parts)

    def __add__(self, other: Wait) -> Wait:
        return wait_sum((*self.parts, other))


# -- stops: has the work had enough? ------------------------------------------------------------


class Stop:
    """Whether to give up after ``attempt`` attempts, ``elapsed`` seconds in; combine with ``|``."""

    def __call__(self, attempt: int, elapsed: float) -> bool:
        raise NotImplementedError

    def __or__(self, other: Stop) -> Stop:
        return stop_any((self, other))


@dataclass(frozen=True)
class stop_after_attempt(Stop):
    """Give up once ``attempts`` attempts were made."""

    attempts: int

    def __call__(self, attempt: int, elapsed: float) -> bool:
        return attempt >= self.attempts


@dataclass(frozen=True)
class stop_after_delay(Stop):
    """Give up once the work has gone on for ``seconds``."""

    seconds: float

    def __call__(self, attempt: int, elapsed: float) -> bool:
        return elapsed >= self.seconds


@dataclass(frozen=True)
class stop_any(Stop):
    """Give up when any of the stops says so."""

    stops: tuple[Stop, ...]

    def __call__(self, attempt: int, elapsed: float) -> bool:
        return any(stop(attempt, elapsed) for stop in self.stops)

    def __or__(self, other: Stop) -> Stop:
        return stop_any((*self.stops, other))


# -- the decision -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Failure:
    """What went wrong with one attempt, as far as retrying is concerned."""

    permanent: bool = False  # the partner refused: the same request can never succeed
    retry_after: float | None = None  # the partner's Retry-After (429/503), in seconds
    held_for: float | None = None  # the partner's breaker is open: seconds until its next probe


@dataclass(frozen=True)
class RetryNow:
    """Try again in process after ``after`` seconds (a blip)."""

    after: float


@dataclass(frozen=True)
class RetryLater:
    """Let the journal schedule the next attempt ``after`` seconds from now (survives restarts)."""

    after: float


@dataclass(frozen=True)
class Fail:
    """The strategy is spent: no more attempts."""


@dataclass(frozen=True)
class Reject:
    """Retrying cannot help: the partner refused the request itself."""


Decision = RetryNow | RetryLater | Fail | Reject


@dataclass(frozen=True, kw_only=True)
class RetryStrategy:
    """How failures are retried: ``in_process`` quick retries for blips, then journal-scheduled
    ones ``wait`` apart, until ``stop``. A Retry-After longer than ``in_process_limit`` or an open
    breaker skips the quick retries; neither is ever cut short."""

    stop: Stop
    wait: Wait
    in_process: int = 0
    in_process_wait: Wait = wait_fixed(0.0)
    in_process_limit: float = 0.0

    def decide(
        self, failure: Failure, attempt: int, elapsed: float, rng: random.Random | None = None
    ) -> Decision:
        """What follows failed attempt number ``attempt`` (1-based), ``elapsed`` seconds in."""
        rng = rng or _RNG
        if failure.permanent:
            return Reject()
        if self.stop(attempt, elapsed):
            return Fail()
        partner_wait = failure.retry_after or 0.0
        if (
            attempt <= self.in_process
            and failure.held_for is None
            and partner_wait <= self.in_process_limit
        ):
            return RetryNow(max(self.in_process_wait(attempt, rng), partner_wait))
        scheduled = self.wait(max(1, attempt - self.in_process), rng)
        return RetryLater(max(scheduled, partner_wait, failure.held_for or 0.0))


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how long a transiently failing delivery is tried again (partners.yaml).

    The first ``short_attempts`` attempts are made in process, ``short_backoff`` apart (doubling),
    for blips; after that the journal schedules each next attempt (``retry_wait``) with exponential
    backoff from ``backoff_base`` up to ``backoff_cap``, so retries survive restarts. The exchange
    fails for good after ``max_attempts`` attempts or ``max_elapsed`` since it was received.
    """

    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    jitter: float = 0.2
    max_elapsed: float = 86400.0
    short_attempts: int = 4
    short_backoff: float = 0.05

    def strategy(self) -> RetryStrategy:
        """The policy as a strategy to decide with."""
        short = self.short_backoff
        return RetryStrategy(
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_elapsed),
            wait=wait_exponential(self.backoff_base, cap=self.backoff_cap).jittered(self.jitter),
            in_process=max(0, self.short_attempts - 1),
            in_process_wait=wait_exponential(short, cap=short * 8)
            + wait_random(0.0, short * self.jitter),
            in_process_limit=short * 8,
        )


# Callbacks to source systems: twelve tries, 2 s apart and doubling up to 10 minutes.
CALLBACKS = RetryStrategy(stop=stop_after_attempt(12), wait=wait_exponential(2.0, cap=600.0))
