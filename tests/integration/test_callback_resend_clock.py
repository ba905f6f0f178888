"""A callback resent long after its end is retried from when the resend was asked for.

The source's system says it never got an outcome two days old; support staff resend it and the
source's receiver answers 503 once. With a retry strategy that gives a callback up 24 h after
it became due, the resend is tried again and delivered, not abandoned at its first failure.
The notifier's clock is injected (two days on), so nothing waits; on SQLite, PostgreSQL and the
in-memory journal alike.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from federation.domain.models import Event, Exchange, State
from federation.domain.retry import RetryStrategy, stop_after_attempt, stop_after_delay, wait_fixed
from federation.runtime.callbacks import resend_callback
from federation.runtime.notifier import Notifier
from replay.journal import Journal
from tests.integration.test_callback_resend import ended, source_config
from tests.waiting import wait_for

DAY = 86400.0
# gives a callback up after five tries or 24 h since it became due, whichever comes first
DAILY = RetryStrategy(stop=stop_after_attempt(5) | stop_after_delay(DAY), wait=wait_fixed(0.05))


def later() -> float:
    """Two days on: when support staff resend, and when the notifier runs."""
    return time.time() + 2 * DAY


@dataclass
class Flaky:
    """The source's receiver: answers 503 to the first ``failures`` callbacks, then 204."""

    failures: int = 1
    got: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        status = 503 if len(self.got) < self.failures else 204
        self.got.append(status)
        return web.Response(status=status)


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[Flaky, str]]:
    """The receiver on loopback and its callback URL."""
    receiver = Flaky()
    app = web.Application()
    app.router.add_post("/outcomes", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield receiver, f"http://127.0.0.1:{runner.addresses[0][1]}/outcomes"
    await runner.cleanup()


async def test_a_late_resend_is_retried_from_when_it_was_asked_for(
    make_config: Any, journal: Journal, flaky: tuple[Flaky, str]
) -> None:
    """Resent two days after the end, refused once by the source: tried again and delivered."""
    receiver, url = flaky
    catalogue = source_config(make_config, f"    callback: {url}\n")
    xid = await ended(journal, "late-resend", State.REJECTED)
    now = time.time()
    await journal.claim_notifications(owner="n0", now=now, lease_until=now + 30, limit=5)
    told = Event(exchange_id=xid, kind="callback_delivered", at=now, data={"state": "rejected"})
    await journal.finish_notification(xid, [told], owner="n0", done=True)
    await resend_callback(journal, catalogue.config, xid, reason="r", by="s", clock=later)
    loop = Notifier(
        journal=journal,
        catalogue=lambda: catalogue,
        owner="n1",
        poll_interval=0.05,
        clock=later,
        retry=DAILY,
    )
    loop.start()
    try:
        done: Exchange | None = await wait_for(
            lambda: journal.get(xid),
            lambda ex: ex is not None and ex.notify_state is None,
            what=f"no callback of {xid} pending",
        )
    finally:
        await loop.stop()
    assert done is not None
    assert receiver.got == [503, 204]
    assert [e.kind for e in done.events][-2:] == ["callback_failed", "callback_delivered"]
