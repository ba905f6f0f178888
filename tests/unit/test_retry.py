"""Retry decisions without I/O: what follows a failed delivery or callback, and when it stops."""

from __future__ import annotations

import random

import pytest

from federation.domain.retry import (
    CALLBACKS,
    Fail,
    Failure,
    Reject,
    RetryLater,
    RetryNow,
    RetryPolicy,
    RetryStrategy,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_fixed,
    wait_random,
)

# The policy's numbers without jitter, so the decisions are exact.
POLICY = RetryPolicy(
    max_attempts=8,
    backoff_base=2.0,
    backoff_cap=10.0,
    jitter=0.0,
    max_elapsed=3600.0,
    short_attempts=4,
    short_backoff=0.05,
)
BLIP = Failure()


def test_waits_add_up_and_double_to_their_cap() -> None:
    """wait_exponential doubles per retry up to its cap; + adds another wait to it."""
    rng = random.Random(1)
    wait = wait_exponential(1.0, cap=5.0) + wait_fixed(0.5)
    assert [wait(n, rng) for n in (1, 2, 3, 4)] == [1.5, 2.5, 4.5, 5.5]
    assert 0.0 <= (wait_fixed(0) + wait_random(0, 1) + wait_random(0, 1))(1, rng) <= 2.0


def test_stops_combine_with_or() -> None:
    """stop_after_attempt(3) | stop_after_delay(60) stops at whichever comes first."""
    stop = stop_after_attempt(3) | stop_after_delay(60)
    assert not stop(2, 59.0)
    assert stop(3, 0.0)
    assert stop(1, 60.0)


def test_a_refusal_is_rejected_even_on_the_last_attempt() -> None:
    """A permanent failure is Reject whatever the attempt: retrying cannot help."""
    strategy = POLICY.strategy()
    assert strategy.decide(Failure(permanent=True), 1, 0.0) == Reject()
    assert strategy.decide(Failure(permanent=True), 8, 0.0) == Reject()


def test_blips_are_retried_in_process_then_scheduled() -> None:
    """The first short_attempts attempts are in process (50, 100, 200 ms), then the journal's
    backoff (2 s, 4 s, 8 s, capped at 10 s)."""
    strategy = POLICY.strategy()
    decisions = [strategy.decide(BLIP, n, 1.0) for n in range(1, 8)]
    assert decisions == [
        RetryNow(0.05),
        RetryNow(0.1),
        RetryNow(0.2),
        RetryLater(2.0),
        RetryLater(4.0),
        RetryLater(8.0),
        RetryLater(10.0),
    ]


def test_spent_after_max_attempts_or_max_elapsed() -> None:
    """Fail at max_attempts, or as soon as max_elapsed has passed, even within the quick ones."""
    strategy = POLICY.strategy()
    assert strategy.decide(BLIP, 8, 1.0) == Fail()
    assert strategy.decide(BLIP, 1, 3600.0) == Fail()


def test_retry_after_is_never_cut_short() -> None:
    """A partner's Retry-After longer than a blip's pause skips the quick retries and is the
    least the scheduled wait can be; a short one only stretches the quick pause."""
    strategy = POLICY.strategy()
    assert strategy.decide(Failure(retry_after=30.0), 1, 0.0) == RetryLater(30.0)
    assert strategy.decide(Failure(retry_after=0.3), 1, 0.0) == RetryNow(0.3)
    assert strategy.decide(Failure(retry_after=1.0), 5, 0.0) == RetryLater(4.0)


def test_an_open_breaker_schedules_for_when_it_lets_a_probe_through() -> None:
    """With the partner's breaker open there is no quick retry: the next attempt waits for it."""
    strategy = POLICY.strategy()
    assert strategy.decide(Failure(held_for=7.0), 1, 0.0) == RetryLater(7.0)
    assert strategy.decide(Failure(held_for=0.0), 1, 0.0) == RetryLater(2.0)


def test_jitter_stays_within_its_spread() -> None:
    """Scheduled waits are spread ± jitter around the backoff, never beyond."""
    policy = RetryPolicy(
        backoff_base=2, backoff_cap=60, jitter=0.2, short_attempts=1, max_attempts=99
    )
    strategy = policy.strategy()
    rng = random.Random(5)
    for attempt in (1, 2, 5, 20):
        raw = min(60, 2 * 2 ** (attempt - 1))
        for _ in range(100):
            decision = strategy.decide(BLIP, attempt, 0.0, rng)
            assert isinstance(decision, RetryLater)
            assert raw * 0.8 <= decision.after <= raw * 1.2


def test_callbacks_retry_twelve_times_doubling_to_ten_minutes() -> None:
    """A failing callback is retried 2 s, 4 s … apart, at most 600 s, and abandoned at the 12th."""
    assert CALLBACKS.decide(BLIP, 1, 0.0) == RetryLater(2.0)
    assert CALLBACKS.decide(BLIP, 3, 0.0) == RetryLater(8.0)
    assert CALLBACKS.decide(BLIP, 11, 0.0) == RetryLater(600.0)
    assert CALLBACKS.decide(BLIP, 12, 0.0) == Fail()


@pytest.mark.parametrize("attempts", [1, 2])
def test_a_strategy_without_quick_retries_schedules_from_the_first(attempts: int) -> None:
    """in_process=0: every retry goes through the journal, numbered from the first failure."""
    strategy = RetryStrategy(stop=stop_after_attempt(5), wait=wait_exponential(1.0))
    assert strategy.decide(BLIP, attempts, 0.0) == RetryLater(float(2 ** (attempts - 1)))
