"""A notice the partner took while a replay landed: the replay frees the notifier's lease, so the
notice's delivery is journalled without clearing the mark, which stays pending. It is not sent
again: a second try would be mapped from the application as it now stands (a queued replay's
time as notice_time), another notice under the same key. The replay's own end, once it comes,
goes under its own key. Through the worker, the replay service and the notifier, to the
partner's notice API on loopback; on SQLite, PostgreSQL and the in-memory journal alike.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from federation.domain.models import Exchange, State
from federation.runtime.notices import resend_notice
from federation.testing import MockAdapter, reply, sequence
from replay.journal import Journal
from replay.service import Mode
from tests.integration.notice_helpers import Steps, notice_endpoint
from tests.integration.test_callback_resend_replay import replayed
from tests.integration.test_notice_resend_overtaken import (
    NoticeApi,
    catalogue_at,
    filed,
    quiet,
    worked,
)


@dataclass
class SteppingApi(Steps, NoticeApi):
    """The notice API, running ``step`` (once) as it takes the next notice."""


@pytest.fixture
async def stepping_api() -> AsyncIterator[tuple[SteppingApi, str]]:
    """The endpoint on loopback and its base URL (hk's inbound.callback)."""
    api = SteppingApi()
    async with notice_endpoint(api.handle) as url:
        yield api, url


def notices(done: Exchange) -> list[tuple[str, str]]:
    """Every notice outcome journalled: (kind, mark)."""
    return [(e.kind, e.data["state"]) for e in done.events if e.kind == "notice_delivered"]


@pytest.mark.parametrize("resent", [True, False])
async def test_a_notice_taken_while_a_replay_lands_is_not_sent_again(
    make_config: Any, journal: Journal, stepping_api: tuple[SteppingApi, str], resent: bool
) -> None:
    """`delivered` (resent, or the first notice) is taken as the application is replayed: it
    is not sent again with the replay's time; once the replay delivers anew, `delivered:2`
    follows, once."""
    api, url = stepping_api
    local = MockAdapter(
        sequence(
            reply({"status": "ok", "ref_no": "GD-1"}), reply({"status": "ok", "ref_no": "GD-2"})
        )
    )
    catalogue = catalogue_at(make_config, url)
    xid = await filed(journal, f"HKDPO-told-{resent}")
    await worked(journal, catalogue, local, xid, State.DELIVERED)
    if resent:
        await quiet(journal, catalogue, xid)
        await resend_notice(journal, xid, reason="hk lost it", by="s1", clock=time.time)

    async def replay() -> None:
        await replayed(journal, xid, Mode.RESEND)

    api.step = replay
    done = await quiet(journal, catalogue, xid)
    assert done.state is State.QUEUED  # the replay is still to be sent
    told = [(key, body) for key, body, _ in api.got]
    assert [key for key, _ in told] == [f"{xid}:delivered"] * (2 if resent else 1)
    assert all(body == told[0][1] for _, body in told)  # one key, one body
    assert notices(done) == [("notice_delivered", "delivered")] * len(told)
    await worked(journal, catalogue, local, xid, State.DELIVERED)
    done = await quiet(journal, catalogue, xid)
    keys = [key for key, _, _ in api.got]
    assert keys == [f"{xid}:delivered"] * len(told) + [f"{xid}:delivered:2"]
    assert api.got[-1][1]["gd_ref"] == "GD-2"
    assert notices(done)[-1] == ("notice_delivered", "delivered:2")
