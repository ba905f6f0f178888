"""A notice held or refused on our side before sending says nothing to its route's breaker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from federation.config import BreakerPolicy
from federation.domain.errors import NotSendable, NotSent, TransientError
from federation.runtime import notices
from federation.runtime.breaker import BreakerState, CircuitBreaker, PartnerGuards


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def channel(exc: Exception, clock: Clock) -> Any:
    """A notice route whose adapter raises ``exc``, its breaker half-open (one probe)."""
    breaker = CircuitBreaker("hk", BreakerPolicy(failures=1, cool_down=5.0, probes=1), clock=clock)
    breaker.failure()
    clock.now += 5.0  # cooled down: the next request is the probe
    guards = PartnerGuards(breaker=breaker, slots=asyncio.Semaphore(1))

    class Adapter:
        async def send(self, request: Any) -> Any:
            raise exc

    return SimpleNamespace(guards=guards, adapter=Adapter())


def refusal(kind: type[Exception]) -> Exception:
    return kind("held on our side", partner="hk", operation="N")


@pytest.mark.parametrize("kind", [NotSent, NotSendable])
async def test_a_probe_stopped_on_our_side_leaves_the_breaker_half_open(kind: type) -> None:
    """An unreadable secret or a notice the WSDL refuses neither opens nor closes the breaker,
    and gives the probe's place back for the next notice."""
    clock = Clock()
    route = channel(refusal(kind), clock)
    result, _ = await notices._send(route, None)
    breaker = route.guards.breaker
    assert isinstance(result, kind)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.try_acquire()  # the probe's place is free again


async def test_a_transient_failure_still_opens_it() -> None:
    """The partner's own transient failure on the probe opens the breaker again (the contrast)."""
    clock = Clock()
    route = channel(refusal(TransientError), clock)
    await notices._send(route, None)
    assert route.guards.breaker.state is BreakerState.OPEN
