"""``POST /v1/replays`` refuses a body that names a key twice in one object, as intake does: a
replay is an operator's action on exchanges, and ``{"mode": "remap", "mode": "resend"}`` or two
``exchange_id``s cannot be told apart. 400 malformed-json naming the key's path, nothing replayed
(no replayed event, no replay in the audit trail), on every journal."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from federation.domain.models import State
from replay.journal import TrailQuery
from tests.conftest import hk_submission
from tests.integration.test_roles import KEYS, with_principals
from tests.integration.test_support_api import submit_all

SUPPORT = {"Authorization": f"Bearer {KEYS['support']}", "Content-Type": "application/json"}

# The body's text with {xid} for the failed exchange; the key path the refusal names. The value
# the parser keeps (the last) is always a replay that would go ahead.
BODIES = {
    "mode": (
        '{"mode": "remap", "mode": "resend", "exchange_id": "{xid}", "reason": "TD back"}',
        "key mode ",
    ),
    "exchange_id": (
        '{"mode": "resend", "exchange_id": "ex-none", "exchange_id": "{xid}", "reason": "r"}',
        "key exchange_id ",
    ),
    "reason": (
        '{"mode": "resend", "exchange_id": "{xid}", "reason": "a", "reason": "b"}',
        "key reason ",
    ),
    "filter.state": (
        '{"mode": "resend", "filter": {"state": "delivered", "state": "failed"},'
        ' "reason": "r", "confirm": true}',
        "key filter.state ",
    ),
}


@pytest.mark.parametrize("case", list(BODIES))
async def test_a_replay_naming_a_key_twice_is_refused_and_nothing_replayed(
    case: str, make_config: Any, simulators: Any, broker_at: Any, journal_of: Any
) -> None:
    text, names = BODIES[case]
    root = with_principals(make_config(max_attempts=2), ("support",))
    sims = await simulators(root)
    sims["hk"].behaviour.fail_ratio = 1.0
    async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
        [xid] = await submit_all(broker, [hk_submission("twice")])
        sims["hk"].behaviour.fail_ratio = 0.0
        body = text.replace("{xid}", xid).encode()
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{url}/v1/replays", data=body, headers=SUPPORT) as r,
        ):
            status, ctype, answer = r.status, r.content_type, orjson.loads(await r.read())
        after = await broker.get(xid)
        replays = await broker.journal.trail(TrailQuery(action="replay", limit=10))
    assert (status, ctype) == (400, "application/problem+json"), answer
    assert answer["type"] == "urn:tongban:problem:malformed-json"
    assert names in answer["detail"] and "send each key once" in answer["detail"]
    assert after is not None and after.state is State.FAILED
    assert [e for e in after.events if e.kind == "replayed"] == []
    assert replays == []
