"""An exchange taken over from an instance that never appends its attempt's end (it died, or
stalled past any answer): the taker's presumed end stands alone. A refusal of the taker's repeat
while that attempt may still be in flight (the partner's total timeout plus a lease since the
takeover) ends the exchange unconfirmed, as it cannot be told from the refusal of a duplicate;
after that window, the refusal is the partner's no and rejects it. A delivery the first instance
appends late, after the window, still settles the exchange as delivered.

w1 sends attempt 1 and its partner holds it; w2 claims the exchange once w1's lease has run out,
on a fake clock that w2's partner moves on before it answers the repeat 409. Each on SQLite,
PostgreSQL and the in-memory journal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from adapters.base import OutboundRequest, Reply
from federation.domain.errors import AdapterError
from federation.domain.models import Exchange, State
from federation.runtime.catalogue import Catalogue, load_catalogue
from federation.testing import MockAdapter, permanent, reply
from replay.journal import Backend
from tests.integration.test_background_loops import due
from tests.integration.test_delivery_lease_lost import with_callback, worker

LEASE = 30.0  # the lease of the workers test_delivery_lease_lost.worker builds
ACCEPTED = reply({"ref_no": "HK-1", "status": "ok"})


def held(answer: Reply | AdapterError) -> tuple[MockAdapter, SimpleNamespace]:
    """w1's partner: holds attempt 1 until ``release`` is set, then answers ``answer``."""
    gate = SimpleNamespace(arrived=asyncio.Event(), release=asyncio.Event())

    async def handle(_: OutboundRequest) -> Reply:
        gate.arrived.set()
        await gate.release.wait()
        if isinstance(answer, AdapterError):
            raise answer
        return answer

    return MockAdapter(handle), gate


async def taken_over(
    journal: Backend, catalogue: Catalogue, key: str, first: Reply | AdapterError
) -> tuple[asyncio.Task[int], SimpleNamespace, Exchange, float]:
    """w1 working an exchange whose attempt 1 its partner holds (answering ``first`` when let
    go), the exchange as w2 claims it after w1's lease ran out, and the time of that claim."""
    await due(journal, key)
    adapter, gate = held(first)
    w1 = asyncio.create_task(worker(journal, catalogue, "w1", adapter).work_once())
    await gate.arrived.wait()
    later = time.time() + 100  # w1's lease has run out by then
    [claimed] = await journal.claim(owner="w2", now=later, lease_until=later + 1e6, limit=5)
    assert claimed.state is State.DELIVERING and claimed.attempts == 1
    return w1, gate, claimed, later


async def refused_by_w2(
    journal: Backend,
    catalogue: Catalogue,
    claimed: Exchange,
    start: float,
    before: Callable[[SimpleNamespace], Awaitable[None]],
) -> Exchange:
    """w2, on a fake clock at ``start``, works ``claimed``: its partner runs ``before`` (which
    moves the clock on) and refuses the repeat 409. The exchange as it stands then."""
    clock = SimpleNamespace(now=start)

    async def refuse(_: OutboundRequest) -> Reply:
        await before(clock)
        raise permanent(409)

    taker = worker(journal, catalogue, "w2", MockAdapter(refuse), clock=lambda: clock.now)
    taker.offer(claimed)
    await taker.stop(grace=10)
    done = await journal.get(claimed.id)
    assert done is not None
    return done


def window_of(catalogue: Catalogue) -> float:
    """How long after the takeover w1's attempt may still be in flight."""
    return catalogue.config.partners["hk"].timeouts.total + LEASE


async def test_a_refusal_within_the_window_leaves_the_exchange_unconfirmed(
    make_config: Any, journal: Backend
) -> None:
    """The repeat refused one second after the takeover: w1's attempt may still be with the
    partner, so the exchange ends unconfirmed (as before the window); w1's late end is kept."""
    catalogue = load_catalogue(with_callback(make_config()))
    w1, gate, claimed, later = await taken_over(journal, catalogue, "window-in", ACCEPTED)

    async def soon(clock: SimpleNamespace) -> None:
        clock.now += 1

    done = await refused_by_w2(journal, catalogue, claimed, later, soon)
    assert done.state is State.UNCONFIRMED and done.notify_state == "unconfirmed"
    assert done.last_error is not None and done.last_error["status"] == 409
    gate.release.set()
    assert await w1 == 1
    assert (await journal.verify())[1] is None


async def test_a_refusal_after_the_window_rejects_the_exchange(
    make_config: Any, journal: Backend
) -> None:
    """The repeat refused once the partner's total timeout and a lease have passed since the
    takeover: w1 (dead as far as anyone can tell) can have nothing in flight, the presumed end
    is final, and the partner's 409 rejects the exchange. An end w1 appends later still joins
    the history, and a refusal leaves the exchange rejected."""
    catalogue = load_catalogue(with_callback(make_config()))
    w1, gate, claimed, later = await taken_over(journal, catalogue, "window-out", permanent(409))

    async def long_after(clock: SimpleNamespace) -> None:
        clock.now += window_of(catalogue) + 1

    done = await refused_by_w2(journal, catalogue, claimed, later, long_after)
    assert done.state is State.REJECTED and done.notify_state == "rejected"
    assert done.last_error is not None and done.last_error["status"] == 409
    gate.release.set()
    assert await w1 == 1
    after = await journal.get(claimed.id)
    assert after is not None and after.state is State.REJECTED
    owners = [e.data.get("owner") for e in after.events if e.kind == "attempt_finished"]
    assert owners == [None, "w2", "w1"]  # presumed, refused repeat, w1's late end
    assert (await journal.verify())[1] is None


async def test_a_delivery_appended_after_the_window_still_settles_it_as_delivered(
    make_config: Any, journal: Backend
) -> None:
    """Past the window, w1's partner takes attempt 1 and w1 appends its delivered end before
    the repeat is refused: the exchange is delivered with w1's receipt, never rejected."""
    catalogue = load_catalogue(with_callback(make_config()))
    w1, gate, claimed, later = await taken_over(journal, catalogue, "window-late", ACCEPTED)

    async def long_after_w1_delivered(clock: SimpleNamespace) -> None:
        clock.now += window_of(catalogue) + 1
        gate.release.set()
        assert await w1 == 1

    done = await refused_by_w2(journal, catalogue, claimed, later, long_after_w1_delivered)
    assert done.state is State.DELIVERED and done.notify_state == "delivered"
    assert done.receipt == {"receipt_number": "HK-1", "status": "ok"}
    assert (await journal.verify())[1] is None
