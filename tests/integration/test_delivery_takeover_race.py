"""An exchange taken over while its attempt is still on the wire, the taker claiming before the
first worker appends that attempt's end: the journal ends in the truth, whichever comes first.

The partner on loopback deduplicates on the idempotency key as a real one does: the first request
of a key is held until the test lets it go and then taken (200, a receipt), a repeat is answered
409. Instance w1 sends attempt 1; while the partner holds it, its lease runs out and w2 claims the
exchange. Then, deterministically:

* w1's end is appended before w2 sends: w2 settles by it (delivered, nothing sent again);
* w2 sends, and the partner answers its repeat 409 only once w1 has appended its delivered end:
  w2 journals its refused attempt and settles by the earlier delivery (delivered, not rejected);
* the partner answers w2's repeat 409 while it still holds attempt 1: w2 cannot tell the refusal
  from the refusal of a duplicate, so the exchange ends unconfirmed (never rejected), and w1's
  delivered attempt joins the history when it comes;
* the partner answers w2's repeat 503 while it holds attempt 1 (w2 schedules a retry), then takes
  attempt 1: the instance that sends attempt 3 settles by that delivery when it is refused;
* w2's adapter crashes on the 409 answered after w1's append: settled by the delivery all the same.

Each on SQLite, PostgreSQL and the in-memory journal; every attempt stays in the history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from adapters.base import OutboundRequest, Reply
from adapters.rest import RestAdapter
from federation.api.net import start_site
from federation.domain.errors import PermanentError
from federation.domain.models import Exchange, Outcome, State
from federation.runtime.catalogue import Catalogue, load_catalogue
from replay.journal import Backend
from tests.integration.test_background_loops import due
from tests.integration.test_delivery_lease_lost import with_callback, worked_by, worker

RECEIPT = {"receipt_number": "HK-1", "status": "ok"}


class Deduplicating:
    """A partner that takes each idempotency key once: the first request of a key is held until
    ``release`` is set, then answered 200 with a receipt; a repeat is answered with the status
    ``on_repeat`` returns (the test's choice of moment and answer: 409 unless it says)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.arrived = asyncio.Event()  # the first request is here (and held)
        self.release = asyncio.Event()
        self.on_repeat: Callable[[], Awaitable[int]] = self.conflict

    async def conflict(self) -> int:
        """Answer a repeat 409 once the first request is let go."""
        await self.release.wait()
        return 409

    async def conflict_after(self, appended: asyncio.Event) -> int:
        """Let the first request go, then answer a repeat 409 once ``appended`` is set (the
        first worker has appended that request's end)."""
        self.release.set()
        await appended.wait()
        return 409

    async def handle(self, request: web.Request) -> web.Response:
        """One request to the renewals service."""
        key = request.headers["Idempotency-Key"]
        repeat = key in self.keys
        self.keys.append(key)
        if repeat:
            status = await self.on_repeat()
            wait = {"Retry-After": "30"} if status == 503 else None  # a wait in the journal
            return web.json_response({"error": "duplicate or busy"}, status=status, headers=wait)
        self.arrived.set()
        await self.release.wait()
        return web.json_response({"ref_no": "HK-1", "status": "ok"})


@pytest.fixture
async def partner() -> AsyncIterator[tuple[Deduplicating, str]]:
    """The deduplicating partner on loopback, and its URL."""
    dedup = Deduplicating()
    app = web.Application()
    app.router.add_post("/vehicle-licences/renewals", dedup.handle)
    runner, url = await start_site(app)
    try:
        yield dedup, url
    finally:
        dedup.release.set()  # nothing held past the test
        await runner.cleanup()


@pytest.fixture
async def hk(make_config: Any, partner: tuple[Deduplicating, str]) -> AsyncIterator[Any]:
    """The catalogue (gd-portal told of every end) and a started REST adapter for hk that
    sends to the partner on loopback, its timeouts long enough for any wait the tests make."""
    _, url = partner
    catalogue = load_catalogue(with_callback(make_config(read="60s", total="120s")))
    adapter = RestAdapter(catalogue.config.with_endpoints({"hk": url}).partners["hk"])
    await adapter.start()
    try:
        yield catalogue, adapter
    finally:
        await adapter.close()


async def first_held_then_taken(
    journal: Backend, catalogue: Catalogue, adapter: Any, dedup: Deduplicating, key: str
) -> tuple[asyncio.Task[int], Exchange]:
    """w1 working an exchange whose attempt 1 the partner holds, and the exchange as w2 claims it
    once w1's lease has run out (before w1 has any end to append)."""
    await due(journal, key)
    w1 = asyncio.create_task(worker(journal, catalogue, "w1", adapter).work_once())
    await dedup.arrived.wait()
    later = time.time() + 100  # w1's lease has run out by then
    [claimed] = await journal.claim(owner="w2", now=later, lease_until=later + 600, limit=5)
    assert claimed.state is State.DELIVERING and claimed.attempts == 1
    return w1, claimed


def ends(done: Exchange) -> list[tuple[int, str, str | None]]:
    """Every attempt_finished of the history: (attempt, outcome, owner), in order."""
    return [
        (e.data["attempt"], e.data["outcome"], e.data.get("owner"))
        for e in done.events
        if e.kind == "attempt_finished"
    ]


async def test_an_end_appended_after_the_takeover_but_before_the_resend_settles_it(
    journal: Backend, partner: tuple[Deduplicating, str], hk: Any
) -> None:
    """w2 claims while attempt 1 is held; the partner then takes it and w1 appends its delivered
    end; w2, about to send, reads it and settles the exchange as delivered with w1's receipt:
    nothing sent again, the source told delivered, no refusal anywhere."""
    dedup, _ = partner
    catalogue, adapter = hk
    w1, claimed = await first_held_then_taken(journal, catalogue, adapter, dedup, "race-before")
    dedup.release.set()
    assert await w1 == 1
    done = await worked_by(journal, catalogue, claimed, adapter, "w2")
    assert dedup.keys == [claimed.id]  # sent once
    assert done.state is State.DELIVERED and done.receipt == RECEIPT
    assert done.attempts == 1 and done.notify_state == "delivered"
    assert done.lifecycle_state == "submitted"
    assert ends(done) == [(1, "delivered", "w1")]
    assert (await journal.verify())[1] is None


async def test_a_conflict_answered_after_the_first_delivery_was_appended_settles_it(
    journal: Backend, partner: tuple[Deduplicating, str], hk: Any
) -> None:
    """w2 sends attempt 2 while the partner still holds attempt 1; the partner takes attempt 1
    (w1 appends its delivered end) and only then answers the repeat 409: w2 journals its refused
    attempt and settles by the earlier delivery, delivered with w1's receipt, never rejected."""
    dedup, _ = partner
    catalogue, adapter = hk
    w1, claimed = await first_held_then_taken(journal, catalogue, adapter, dedup, "race-after")
    appended = asyncio.Event()
    dedup.on_repeat = lambda: dedup.conflict_after(appended)
    w2 = asyncio.create_task(worked_by(journal, catalogue, claimed, adapter, "w2"))
    assert await w1 == 1
    appended.set()
    done = await w2
    assert dedup.keys == [claimed.id, claimed.id]
    assert done.state is State.DELIVERED and done.receipt == RECEIPT
    assert done.attempts == 2 and done.notify_state == "delivered"
    assert done.lifecycle_state == "submitted"
    # attempt 1: w2's presumed end, then w1's own (it stands); attempt 2: the 409
    assert ends(done) == [
        (1, "unknown_outcome", None),
        (1, "delivered", "w1"),
        (2, "permanent_error", "w2"),
    ]
    history = done.attempt_history()
    assert [a.outcome for a in history] == [Outcome.DELIVERED, Outcome.PERMANENT_ERROR]
    assert history[1].error is not None and history[1].error["status"] == 409
    assert (await journal.verify())[1] is None


async def test_a_conflict_answered_while_the_first_attempt_is_held_leaves_it_unconfirmed(
    journal: Backend, partner: tuple[Deduplicating, str], hk: Any
) -> None:
    """The partner answers w2's repeat 409 while it still holds attempt 1, whose end nobody has
    yet: the refusal cannot be told from a duplicate's, so the exchange ends unconfirmed (the
    source told so), never rejected; w1's delivered attempt joins the history afterwards."""
    dedup, _ = partner
    catalogue, adapter = hk
    w1, claimed = await first_held_then_taken(journal, catalogue, adapter, dedup, "race-held")

    async def at_once() -> int:
        return 409

    dedup.on_repeat = at_once
    done = await worked_by(journal, catalogue, claimed, adapter, "w2")
    assert done.state is State.UNCONFIRMED and done.notify_state == "unconfirmed"
    assert done.last_error is not None and done.last_error["kind"] == "unconfirmed"
    assert done.last_error["status"] == 409
    dedup.release.set()
    assert await w1 == 1
    after = await journal.get(claimed.id)
    assert after is not None and after.state is State.UNCONFIRMED
    history = after.attempt_history()
    assert [a.outcome for a in history] == [Outcome.DELIVERED, Outcome.PERMANENT_ERROR]
    assert dedup.keys == [claimed.id, claimed.id]
    assert (await journal.verify())[1] is None


async def test_a_delivery_appended_while_the_exchange_waited_settles_the_next_refusal(
    journal: Backend, partner: tuple[Deduplicating, str], hk: Any
) -> None:
    """The partner answers w2's repeat 503 while it holds attempt 1 (retry_wait), then takes
    attempt 1 (w1 appends its delivered end); w3 claims the exchange when it is due, sends
    attempt 3, is answered 409 and settles by attempt 1: delivered with w1's receipt, every
    attempt in the history."""
    dedup, _ = partner
    catalogue, adapter = hk
    w1, claimed = await first_held_then_taken(journal, catalogue, adapter, dedup, "race-wait")
    answers = iter([503, 409])

    async def busy_then_conflict() -> int:
        return next(answers)

    dedup.on_repeat = busy_then_conflict
    waiting = await worked_by(journal, catalogue, claimed, adapter, "w2")
    assert waiting.state is State.RETRY_WAIT and waiting.attempts == 2
    dedup.release.set()
    assert await w1 == 1
    later = time.time() + 1000
    [due_again] = await journal.claim(owner="w3", now=later, lease_until=later + 600, limit=5)
    done = await worked_by(journal, catalogue, due_again, adapter)  # by w3
    assert done.state is State.DELIVERED and done.receipt == RECEIPT
    assert done.attempts == 3 and done.notify_state == "delivered"
    assert [a.outcome for a in done.attempt_history()] == [
        Outcome.DELIVERED,
        Outcome.TRANSIENT_ERROR,
        Outcome.PERMANENT_ERROR,
    ]
    assert dedup.keys == [claimed.id] * 3
    assert (await journal.verify())[1] is None


class Careless:
    """An adapter around the REST one with a bug: it reads a receipt number from any answer, so
    a refusal's body (no such field) makes it raise a KeyError."""

    def __init__(self, rest: RestAdapter) -> None:
        self.rest = rest

    async def start(self) -> None:
        """The REST adapter is started by its fixture."""

    async def close(self) -> None:
        """The REST adapter is closed by its fixture."""

    async def send(self, request: OutboundRequest) -> Reply:
        try:
            return await self.rest.send(request)
        except PermanentError as exc:
            body = dict(exc.transcript.response or {})
            raise KeyError(body.get("missing")) from exc


async def test_an_adapter_crash_on_the_repeat_still_settles_by_the_earlier_delivery(
    journal: Backend, partner: tuple[Deduplicating, str], hk: Any
) -> None:
    """As with a 409 answered after w1's append, but w2's adapter crashes reading it: the
    exchange is delivered with w1's receipt all the same, attempt 2 journalled of unknown
    outcome naming the KeyError."""
    dedup, _ = partner
    catalogue, adapter = hk
    w1, claimed = await first_held_then_taken(journal, catalogue, adapter, dedup, "race-crash")
    appended = asyncio.Event()
    dedup.on_repeat = lambda: dedup.conflict_after(appended)
    w2 = asyncio.create_task(worked_by(journal, catalogue, claimed, Careless(adapter), "w2"))
    assert await w1 == 1
    appended.set()
    done = await w2
    assert done.state is State.DELIVERED and done.receipt == RECEIPT
    history = done.attempt_history()
    assert [a.outcome for a in history] == [Outcome.DELIVERED, Outcome.UNKNOWN_OUTCOME]
    assert history[1].error is not None and history[1].error["exception"] == "KeyError"
    assert (await journal.verify())[1] is None
