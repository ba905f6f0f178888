"""A callback receiver whose reply is not HTTP the broker can read, on a raw loopback socket,
through a real broker on every journal.

aiohttp's words for a reply head it cannot parse (a header line without a colon, a bad status
line) quote the reply's bytes: an applicant's name and HKID. They were the ``callback_failed``
event's error, a plain string the history shows in clear to every viewer. The error now says what
went wrong in our words only; the try is still a failed one, retried.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from federation.domain.words import shown_in
from federation.logging import MASK
from federation.runtime.broker import Broker
from tests.conftest import hk_submission
from tests.integration.test_callback_signing import events_of, with_source
from tests.integration.test_http_unreadable_reply import PERSONAL, REPLIES, raw_partner


@pytest.mark.parametrize("shape", sorted(REPLIES))
async def test_callback_error_keeps_reply_bytes_out(
    shape: str, make_config: Any, simulators: Any, broker_at: Any, journal_of: Any
) -> None:
    reply, ours = REPLIES[shape]
    async with raw_partner(reply) as receiver:
        root = with_source(make_config(), f"    callback: {receiver.url}/cb\n")
        sims = await simulators(root)
        async with broker_at(root, sims, journal_obj=journal_of) as (broker, _url):
            ex, _ = await broker.submit(hk_submission(f"cb-{shape}"))
            full = await events_of(broker, ex.id, "callback_failed")
            await _assert_unquoted(broker, ex.id)
    tries = [e for e in full.events if e.kind == "callback_failed"]
    assert receiver.took >= 1
    assert tries[0].data["error"] == ours
    for event in full.events:
        if event.kind.startswith("callback"):
            shown = orjson.dumps(shown_in(event.data, clear=False, mask=MASK)).decode()
            assert not any(p in shown for p in PERSONAL), shown


async def _assert_unquoted(broker: Broker, xid: str) -> None:
    """The journal as read back holds none of the reply's personal data in a callback event."""
    got = await broker.get(xid)
    assert got is not None
    for event in got.events:
        if event.kind.startswith("callback"):
            text = orjson.dumps(event.data).decode()
            assert not any(p in text for p in PERSONAL), text
