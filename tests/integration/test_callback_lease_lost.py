"""A callback try whose lease another instance took meanwhile is journalled all the same: the
journal holds every attempt, on SQLite, PostgreSQL and the in-memory journal alike."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from federation.api.net import start_site
from federation.domain.models import State
from federation.runtime.notifier import Notifier
from replay.journal import Backend
from tests.integration.test_callback_resend import ended, source_config, with_event


async def test_a_try_whose_lease_was_taken_meanwhile_is_still_journalled(
    make_config: Any, journal: Backend
) -> None:
    """While the source's receiver takes the callback, another instance (n2) takes its lease:
    the try is journalled (callback_delivered with the receiver's status), and n2's lease, the
    mark and its count of tries stay as they were; the chain still verifies."""
    taken: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        later = time.time() + 100  # n1's lease has expired by then
        grabbed = await journal.claim_notifications(
            owner="n2", now=later, lease_until=later + 600, limit=5
        )
        taken.extend(ex.id for ex in grabbed)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/outcomes", receive)
    runner, url = await start_site(app)
    try:
        catalogue = source_config(make_config, f"    callback: {url}/outcomes\n")
        xid = await ended(journal, "lease-lost")
        loop = Notifier(
            journal=journal, catalogue=lambda: catalogue, owner="n1", poll_interval=0.05
        )
        loop.start()
        try:
            tried = await with_event(journal, xid, "callback_delivered")
        finally:
            await loop.stop()
    finally:
        await runner.cleanup()
    assert taken == [xid]
    [delivered] = [e for e in tried.events if e.kind == "callback_delivered"]
    assert delivered.data == {"status": 204, "state": "delivered"}
    assert tried.state is State.DELIVERED
    assert (tried.notify_state, tried.notify_attempts) == ("delivered", 0)
    await journal.finish_notification(xid, [], owner="n2", done=True)  # n2's lease held
    assert (await journal.verify())[1] is None
