"""A replay that ends as the exchange ended before is a new outcome, so its callback is a message
of its own: the n-th time an exchange ends in a state goes as ``<id>:<state>:<n>`` (the first as
``<id>:<state>``, as it always did), while a resend keeps the key, and the body, of the message it
resends. The partner is a REST partner simulator on loopback (its first answers refuse, later ones
accept), the source's receiver records every key and body; on SQLite, PostgreSQL and the in-memory
journal alike.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from adapters.registry import create_adapter, protocols
from federation.config import load_config
from federation.domain.errors import UnrecognisedReply
from federation.domain.models import Exchange, State
from federation.runtime.callbacks import resend_callback
from federation.runtime.catalogue import Catalogue
from federation.runtime.notices import resend_notice
from federation.sim.rest import Behaviour, PartnerSimulator, simulator_for
from federation.testing import MockAdapter, permanent, reply, sequence
from replay.journal import Journal
from replay.service import Mode
from tests.integration.test_background_loops import due
from tests.integration.test_callback_resend import (
    Receiver,
    listening,
    new_secret,
    signed_source,
    until_quiet,
)
from tests.integration.test_callback_resend_replay import replayed, worked
from tests.integration.test_notices import file_one, notice_config, notices_at
from tests.waiting import wait_for


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The source's receiver on loopback, knowing one fresh secret."""
    async with listening(Receiver(secrets=[new_secret()])) as r:
        yield r


@contextlib.asynccontextmanager
async def simulated(catalogue: Catalogue) -> AsyncIterator[tuple[Any, Any]]:
    """The hk partner's REST simulator on loopback, and the partner's own REST adapter sending
    to it (given to the worker as the helper's MockAdapter would be), until the block ends."""
    hk = catalogue.partner("hk")
    assert hk is not None
    sim = simulator_for(hk, seed=7)
    await sim.start()
    adapter = create_adapter(replace(hk, endpoint=sim.url))
    await adapter.start()
    try:
        yield sim, adapter
    finally:
        await adapter.close()
        await sim.stop()


def sent(receiver: Receiver) -> list[tuple[str, dict[str, Any]]]:
    """The callbacks the source took, each verified: (Idempotency-Key, body)."""
    out = []
    for headers, body, ok in receiver.got:
        assert ok and headers["webhook-id"] == headers["idempotency-key"]
        out.append((headers["idempotency-key"], orjson.loads(body)))
    return out


async def test_each_replayed_end_is_a_callback_of_its_own(
    make_config: Any, receiver: Receiver, journal: Journal, monkeypatch: Any
) -> None:
    """Refused (422), replayed and refused again for another reason (400), replayed and
    delivered, replayed and delivered again: four outcomes, four keys (rejected, rejected:2,
    delivered, delivered:2), each body the outcome it announces (the second refusal's reason,
    the delivery's receipt)."""
    catalogue = signed_source(make_config, receiver, monkeypatch)
    async with simulated(catalogue) as (sim, partner):
        sim.behaviour = Behaviour(fail_ratio=1.0, fail_status=422)
        xid = (await due(journal, "again-1")).id
        await worked(journal, catalogue, partner, xid, State.REJECTED)
        await until_quiet(journal, catalogue, xid)
        for behaviour, end in (
            (Behaviour(fail_ratio=1.0, fail_status=400), State.REJECTED),
            (Behaviour(), State.DELIVERED),
            (Behaviour(), State.DELIVERED),
        ):
            sim.behaviour = behaviour
            await replayed(journal, xid, Mode.RESEND)
            await worked(journal, catalogue, partner, xid, end)
            done = await until_quiet(journal, catalogue, xid)
    got = sent(receiver)
    assert [k for k, _ in got] == [
        f"{xid}:rejected",
        f"{xid}:rejected:2",
        f"{xid}:delivered",
        f"{xid}:delivered:2",
    ]
    bodies = [b for _, b in got]
    assert [b["state"] for b in bodies] == ["rejected", "rejected", "delivered", "delivered"]
    assert bodies[0]["last_error"]["status"] == 422
    assert bodies[1]["last_error"]["status"] == 400
    assert bodies[2]["receipt"] and bodies[3]["receipt"] == done.receipt
    assert [e.data["state"] for e in done.events if e.kind == "callback_delivered"] == [
        "rejected",
        "rejected:2",
        "delivered",
        "delivered:2",
    ]


def unrecognised(words: str) -> UnrecognisedReply:
    return UnrecognisedReply(words, partner="hk", operation="send", status=200)


async def test_unconfirmed_again_and_a_new_receipt_are_told(
    make_config: Any, receiver: Receiver, journal: Journal, monkeypatch: Any
) -> None:
    """Unconfirmed, replayed and unconfirmed again (another reply); then delivered, replayed and
    delivered with a new receipt: unconfirmed, unconfirmed:2, delivered, delivered:2, each with
    what it announces."""
    partner = MockAdapter(
        sequence(
            unrecognised("reply had no status"),
            unrecognised("reply said PENDING"),
            reply({"status": "ok", "ref_no": "HK-1"}),
            reply({"status": "ok", "ref_no": "HK-2"}),
        )
    )
    catalogue = signed_source(make_config, receiver, monkeypatch)
    xid = (await due(journal, "again-2")).id
    await worked(journal, catalogue, partner, xid, State.UNCONFIRMED)
    await until_quiet(journal, catalogue, xid)
    for end in (State.UNCONFIRMED, State.DELIVERED, State.DELIVERED):
        await replayed(journal, xid, Mode.RESEND)
        await worked(journal, catalogue, partner, xid, end)
        await until_quiet(journal, catalogue, xid)
    got = sent(receiver)
    assert [k for k, _ in got] == [
        f"{xid}:unconfirmed",
        f"{xid}:unconfirmed:2",
        f"{xid}:delivered",
        f"{xid}:delivered:2",
    ]
    bodies = [b for _, b in got]
    assert "no status" in bodies[0]["last_error"]["message"]
    assert "PENDING" in bodies[1]["last_error"]["message"]
    assert [b["receipt"]["receipt_number"] for b in bodies[2:]] == ["HK-1", "HK-2"]


async def test_a_resend_of_a_replayed_end_keeps_its_key(
    make_config: Any, receiver: Receiver, journal: Journal, monkeypatch: Any
) -> None:
    """A replay's end resent by support staff goes under that end's key (rejected:2, not the
    first refusal's), telling that end again (its state and reason)."""
    partner = MockAdapter(sequence(permanent(422), permanent(400)))
    catalogue = signed_source(make_config, receiver, monkeypatch)
    xid = (await due(journal, "again-3")).id
    await worked(journal, catalogue, partner, xid, State.REJECTED)
    await until_quiet(journal, catalogue, xid)
    await replayed(journal, xid, Mode.RESEND)
    await worked(journal, catalogue, partner, xid, State.REJECTED)
    await until_quiet(journal, catalogue, xid)
    mark = await resend_callback(
        journal, catalogue.config, xid, reason="portal lost it", by="support-1", clock=time.time
    )
    done = await until_quiet(journal, catalogue, xid)
    got = sent(receiver)
    assert mark == "rejected:2"
    assert [k for k, _ in got] == [f"{xid}:rejected", f"{xid}:rejected:2", f"{xid}:rejected:2"]
    first, again = ({k: v for k, v in b.items() if k != "at"} for _, b in got[1:])
    assert again == first and again["last_error"]["status"] == 400
    assert [e.data["state"] for e in done.events if e.kind == "callback_delivered"] == [
        "rejected",
        "rejected:2",
        "rejected:2",
    ]
    assert done.notify_state is None


async def delivered_notices(broker: Any, xid: str, count: int) -> Exchange:
    """The exchange once ``count`` of its notices are delivered."""
    found: Exchange = await wait_for(
        lambda: broker.get(xid),
        lambda ex: (
            ex is not None and [e.kind for e in ex.events].count("notice_delivered") >= count
        ),
        what=f"{count} notices of {xid} delivered",
    )
    return found


async def test_a_partner_hears_a_replayed_delivery_as_a_notice_of_its_own(
    make_config: Any, simulators: Any, broker_at: Any, journal_of: Any
) -> None:
    """An application hk filed is delivered to the local system (notice `delivered`), replayed
    and delivered again: hk's notice API gets a second notice under `delivered:2` (before, the
    replay's notice reused `delivered`, a repeat to discard); resent, it keeps `delivered:2`."""
    root = notice_config(make_config)
    hk = load_config(root, protocols()).partners["hk"]
    notice_api = PartnerSimulator(hk, seed=3)
    await notice_api.start()
    try:
        sims = {**await simulators(root), "hk:callback": notices_at(notice_api)}
        async with broker_at(root, sims, journal_obj=journal_of) as (broker, url):
            xid = await file_one(url, "HKDPO-2026-0901")
            await delivered_notices(broker, xid, 1)
            await replayed(broker.journal, xid, Mode.RESEND)
            await delivered_notices(broker, xid, 2)
            mark = await resend_notice(
                broker.journal, xid, reason="DPO lost it", by="support-1", clock=time.time
            )
            done = await delivered_notices(broker, xid, 3)
    finally:
        await notice_api.stop()
    assert mark == "delivered:2"
    assert [e.data["state"] for e in done.events if e.kind == "notice_delivered"] == [
        "delivered",
        "delivered:2",
        "delivered:2",
    ]
    assert notice_api.seen[f"{xid}:delivered"].count == 1
    again = notice_api.seen[f"{xid}:delivered:2"]
    assert again.count == 2 and again.first_body["notice_type"] == "RECEIVED"
