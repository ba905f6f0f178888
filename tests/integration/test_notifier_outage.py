"""The notifier outlives a journal outage and an unforeseen error: the callback a failed round
left unrecorded is sent and journalled once the journal is back, later callbacks go out as
before, and what went wrong is logged without the application's personal data; on SQLite,
PostgreSQL and the in-memory journal alike."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from federation.api.net import start_site
from federation.domain.errors import JournalUnavailable
from federation.logging import capture_logs
from federation.runtime.catalogue import Catalogue
from federation.runtime.notifier import Notifier
from replay.journal import Journal
from tests.integration.test_callback_resend import ended, source_config, with_event

NAME = "陳大文"  # the applicant in every exchange ended() makes


@dataclass
class Source:
    """The source's callback endpoint on loopback: takes everything (204), keeps each key."""

    url: str = ""
    keys: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.keys.append(request.headers["Idempotency-Key"])
        return web.Response(status=204)


@pytest.fixture
async def source() -> AsyncIterator[Source]:
    """The source's receiver, listening until the test ends."""
    s = Source()
    app = web.Application()
    app.router.add_post("/outcomes", s.handle)
    runner, s.url = await start_site(app)
    try:
        yield s
    finally:
        await runner.cleanup()


@dataclass
class Clock:
    """Wall time, moved on by ``skip`` seconds: a lease the failed round held has run out."""

    ahead: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead

    def skip(self, seconds: float = 100.0) -> None:
        self.ahead += seconds


def failing_once(
    journal: Journal, name: str, error: Exception, then: Callable[[], None]
) -> list[int]:
    """Make ``journal.<name>`` raise ``error`` on its first call (after doing nothing), then
    work again; ``then`` runs as it fails. Returns the count of calls, kept up to date."""
    real = getattr(journal, name)
    calls = [0]

    async def call(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            then()
            raise error
        return await real(*args, **kw)

    setattr(journal, name, call)
    return calls


@contextlib.asynccontextmanager
async def running(
    journal: Journal, catalogue: Callable[[], Catalogue], clock: Clock
) -> AsyncIterator[Notifier]:
    """The broker's callback loop on ``journal`` until the block ends."""
    loop = Notifier(
        journal=journal, catalogue=catalogue, owner="n1", poll_interval=0.05, clock=clock
    )
    loop.start()
    try:
        yield loop
    finally:
        await loop.stop()


def quiet(logs: Sequence[Mapping[str, Any]]) -> bool:
    """No event logged names the applicant."""
    return all(NAME not in repr(e) for e in logs)


async def test_a_try_the_journal_failed_to_record_is_sent_again_and_journalled(
    make_config: Any, source: Source, journal: Journal
) -> None:
    """The journal is down as the delivered callback is recorded: the notifier goes on, sends it
    again under the same key once the lease is over, journals it, and sends the next one."""
    catalogue = source_config(make_config, f"    callback: {source.url}/outcomes\n")
    clock = Clock()
    down = JournalUnavailable("database is locked")
    failing_once(journal, "finish_notification", down, clock.skip)
    first = await ended(journal, "outage-1")
    with capture_logs() as logs:
        async with running(journal, lambda: catalogue, clock):
            told = await with_event(journal, first, "callback_delivered")
            second = await ended(journal, "outage-2")
            await with_event(journal, second, "callback_delivered")
    assert source.keys == [f"{first}:delivered", f"{first}:delivered", f"{second}:delivered"]
    assert told.notify_state is None
    [unrecorded] = [e for e in logs if e["event"] == "callback_not_journalled"]
    assert unrecorded["exchange_id"] == first and unrecorded["error"] == "database is locked"
    assert quiet(logs)


async def test_an_unforeseen_error_in_one_callback_does_not_stop_the_others(
    make_config: Any, source: Source, journal: Journal
) -> None:
    """Reading the catalogue fails in an unforeseen way (its message quoting the applicant): the
    error is logged by its type only, the callback goes out once the lease is over, and so does
    the next one."""
    catalogue = source_config(make_config, f"    callback: {source.url}/outcomes\n")
    clock = Clock()
    reads = [0]

    def read() -> Catalogue:
        reads[0] += 1
        if reads[0] == 1:
            clock.skip()
            raise ValueError(f"cannot read {NAME}")
        return catalogue

    first = await ended(journal, "crash-1")
    with capture_logs() as logs:
        async with running(journal, read, clock):
            await with_event(journal, first, "callback_delivered")
            second = await ended(journal, "crash-2")
            await with_event(journal, second, "callback_delivered")
    assert source.keys == [f"{first}:delivered", f"{second}:delivered"]
    [crashed] = [e for e in logs if e["event"] == "callback_crashed"]
    assert crashed["exchange_id"] == first and crashed["error"] == "ValueError"
    assert quiet(logs)


async def test_an_unforeseen_error_while_claiming_does_not_stop_the_loop(
    make_config: Any, source: Source, journal: Journal
) -> None:
    """Claiming fails once with an error no backend is meant to raise: logged by its type, and
    the callback due goes out on the next round."""
    catalogue = source_config(make_config, f"    callback: {source.url}/outcomes\n")
    clock = Clock()
    failing_once(journal, "claim_notifications", RuntimeError(f"row of {NAME}"), lambda: None)
    xid = await ended(journal, "claim-crash")
    with capture_logs() as logs:
        async with running(journal, lambda: catalogue, clock):
            await with_event(journal, xid, "callback_delivered")
    assert source.keys == [f"{xid}:delivered"]
    [crashed] = [e for e in logs if e["event"] == "notifier_round_crashed"]
    assert crashed["error"] == "RuntimeError"
    assert quiet(logs)


async def through_outage(
    journal: Journal, catalogue: Catalogue, rounds: int, cap: float, key: str
) -> tuple[str, list[float]]:
    """An ended exchange's callback while claiming fails ``rounds`` times in a row, then works:
    its id once the callback is journalled as delivered, and every pause the notifier took."""
    real = journal.claim_notifications
    calls = [0]

    async def claim(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        if calls[0] <= rounds:
            raise JournalUnavailable("connection refused")
        return await real(*args, **kw)

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    xid = await ended(journal, key)
    loop = Notifier(
        journal=journal,
        catalogue=lambda: catalogue,
        owner="n1",
        poll_interval=0.05,
        backoff_cap=cap,
        sleep=sleep,
    )
    with pytest.MonkeyPatch.context() as patch, capture_logs():
        patch.setattr(journal, "claim_notifications", claim)
        loop.start()
        try:
            await with_event(journal, xid, "callback_delivered")
        finally:
            await loop.stop()
    return xid, waits


async def test_a_lasting_outage_is_polled_less_and_less_often(
    make_config: Any, source: Source, journal: Journal
) -> None:
    """While claiming keeps failing, the notifier waits twice as long after each failed round
    (up to its cap); once the journal answers, it polls at its usual pace again."""
    catalogue = source_config(make_config, f"    callback: {source.url}/outcomes\n")
    xid, waits = await through_outage(journal, catalogue, 8, 1.0, "lasting")
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert source.keys == [f"{xid}:delivered"]


async def test_an_outage_of_thousands_of_rounds_does_not_end_the_loop(
    make_config: Any, source: Source, journal: Journal
) -> None:
    """Claiming fails 2,000 rounds in a row (a night of outage at the cap): the pause stays at its
    cap, the loop lives on, and the callback goes out once the journal answers."""
    catalogue = source_config(make_config, f"    callback: {source.url}/outcomes\n")
    xid, waits = await through_outage(journal, catalogue, 2000, 30.0, "night")
    assert len(waits) == 2000 and waits[-1] == 30.0
    assert source.keys == [f"{xid}:delivered"]
