"""A notice in the partner's dialect that failed before a replay is retried, while the replay is
queued, as the notice it first sent: an end no step event dates (the local system's refusal)
keeps the end's time, not the queued replay's, under the same key. Through the worker, the
replay service and the notifier, to hk's notice API on loopback; on SQLite, PostgreSQL and the
in-memory journal alike.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from federation.domain.models import State
from federation.runtime.notifier import Notifier
from federation.testing import MockAdapter, permanent, sequence
from replay.journal import Journal
from replay.service import Mode
from tests.integration.notice_helpers import notice_endpoint
from tests.integration.test_callback_resend import with_event
from tests.integration.test_callback_resend_replay import replayed
from tests.integration.test_notice_resend_overtaken import NoticeApi, catalogue_at, filed, worked
from tests.waiting import wait_for


@pytest.fixture
async def notice_api() -> AsyncIterator[tuple[NoticeApi, str]]:
    """hk's notice API on loopback and its base URL (hk's inbound.callback)."""
    api = NoticeApi()
    async with notice_endpoint(api.handle) as url:
        yield api, url


async def test_a_notice_that_failed_before_a_replay_is_retried_as_first_sent(
    make_config: Any, journal: Journal, notice_api: tuple[NoticeApi, str]
) -> None:
    """The local system refuses hk's application; hk's API answers the first notice of the
    refusal 503; the application is replayed (and stays queued); the notice's retry carries
    what the first try did."""
    api, url = notice_api
    api.failures = 1
    local = MockAdapter(sequence(permanent(422), permanent(409)))
    catalogue = catalogue_at(make_config, url)
    xid = await filed(journal, "HKDPO-fail-then-replay")
    await worked(journal, catalogue, local, xid, State.REJECTED)
    now = [time.time() + 1000.0]  # the notifier's clock, moved on by hand to make the retry due
    loop = Notifier(
        journal=journal,
        catalogue=lambda: catalogue,
        owner="n1",
        poll_interval=0.05,
        clock=lambda: now[0],
    )
    loop.start()
    try:
        await with_event(journal, xid, "notice_attempt")
        await replayed(journal, xid, Mode.RESEND)  # stays queued: no worker runs
        now[0] += 3600.0
        done = await wait_for(
            lambda: journal.get(xid),
            lambda ex: ex is not None and ex.notify_state is None,
            what="no notice pending",
        )
    finally:
        await loop.stop()
    assert done.state is State.QUEUED
    assert [(key, status) for key, _, status in api.got] == [
        (f"{xid}:rejected", 503),
        (f"{xid}:rejected", 200),
    ]
    (_, first, _), (_, again, _) = api.got
    assert {k: (first[k], again.get(k)) for k in first if first[k] != again.get(k)} == {}
