"""A replay after a callback resend: the exchange is replayed while the resent callback is still
pending, the worker sends it again and it ends anew (its own callback armed over the resend's
mark). Both go out, to the source's own receiver on loopback: the resent callback under its key,
then the replay's outcome under its own; each journalled. On SQLite, PostgreSQL and the in-memory
journal alike.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from federation.domain.models import Exchange, State
from federation.runtime.callbacks import resend_callback
from federation.runtime.catalogue import Catalogue
from federation.runtime.worker import Worker
from federation.testing import MockAdapter, permanent, reply, sequence
from replay.journal import Journal, Query
from replay.service import Mode, ReplayService
from tests.integration.test_background_loops import due
from tests.integration.test_callback_resend import (
    Receiver,
    Stepping,
    listening,
    new_secret,
    signed_source,
    until_quiet,
)
from tests.waiting import wait_for


async def worked(
    journal: Journal, catalogue: Catalogue, partner: MockAdapter, xid: str, state: State
) -> Exchange:
    """Run the broker's worker (sending to ``partner``) until ``xid`` is ``state``; no callback
    is sent meanwhile (the notifier does not run)."""
    worker = Worker(
        journal=journal,
        catalogue=lambda: catalogue,
        adapters={"hk": partner},
        owner="w1",
        lease=5.0,
        poll_interval=0.05,
    )
    worker.start()
    try:
        found = await wait_for(
            lambda: journal.get(xid),
            lambda ex: ex is not None and ex.state is state,
            what=f"{xid} {state.value}",
        )
    finally:
        await worker.stop()
    assert found is not None
    return found


async def rejected_then_resent(
    journal: Journal, catalogue: Catalogue, partner: MockAdapter, key: str
) -> str:
    """An application the partner refused, its source told so, whose callback support staff
    then resend: the resend is pending when this returns. Its id."""
    xid = (await due(journal, key)).id  # received, its lease run out: any worker takes it
    await worked(journal, catalogue, partner, xid, State.REJECTED)
    await until_quiet(journal, catalogue, xid)  # the source heard `rejected` once
    mark = await resend_callback(
        journal, catalogue.config, xid, reason="portal lost it", by="support-1", clock=time.time
    )
    assert mark == "rejected"
    return xid


async def replayed(journal: Journal, xid: str, mode: Mode) -> None:
    """Support staff replay ``xid`` (the partner has fixed its side)."""
    service = ReplayService(journal)
    plan = await service.plan(Query(exchange_id=xid), mode)
    result = await service.run(plan, reason="partner fixed its schema", by="ops-1")
    assert result.replayed == [xid]


def callbacks_after_resend(done: Exchange) -> list[tuple[str, str, Any]]:
    """The callback tries journalled after the resend: (kind, mark, attempts if abandoned)."""
    kinds = [e.kind for e in done.events]
    after = done.events[kinds.index("callback_replayed") + 1 :]
    return [
        (e.kind, e.data["state"], e.data.get("attempts"))
        for e in after
        if e.kind.startswith("callback_")
    ]


@pytest.mark.parametrize(
    ("mode", "up"), [(Mode.RESEND, True), (Mode.REMAP, True), (Mode.RESEND, False)]
)
async def test_a_replay_after_a_resend_sends_the_resent_callback_too(
    make_config: Any, journal: Journal, monkeypatch: Any, mode: Mode, up: bool
) -> None:
    """The callback `rejected` is resent, and before the notifier gets to it the exchange is
    replayed and delivered (its `delivered` callback armed over the resend's mark): the source
    hears the resent `rejected` first, then `delivered`, each under its own key and journalled
    (a source that stays down has each abandoned after its own two tries)."""
    partner = MockAdapter(sequence(permanent(), reply({"status": "ok", "ref": "HK-1"})))
    async with listening(Receiver(secrets=[new_secret()])) as receiver:
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = await rejected_then_resent(journal, catalogue, partner, f"replay-{mode}-{up}")
        await replayed(journal, xid, mode)
        await worked(journal, catalogue, partner, xid, State.DELIVERED)
        receiver.down = not up
        done = await until_quiet(journal, catalogue, xid)
    keys = [h["idempotency-key"] for h, _, _ in receiver.got]
    tries = callbacks_after_resend(done)
    assert len(partner.requests) == 2  # the replay happened: the partner had it again
    assert [e.data["mode"] for e in done.events if e.kind == "replayed"] == [mode.value]
    if up:
        assert keys == [f"{xid}:rejected", f"{xid}:rejected", f"{xid}:delivered"]
        assert [ok for _, _, ok in receiver.got] == [True, True, True]
        assert tries == [
            ("callback_delivered", "rejected", None),
            ("callback_delivered", "delivered", None),
        ]
    else:
        assert keys == [f"{xid}:rejected"] * 3 + [f"{xid}:delivered"] * 2
        assert tries == [
            ("callback_failed", "rejected", None),
            ("callback_abandoned", "rejected", 2),
            ("callback_failed", "delivered", None),
            ("callback_abandoned", "delivered", 2),
        ]
    resent, outcome = (orjson.loads(receiver.got[i][1]) for i in (1, -1))
    assert resent["state"] == "rejected" and outcome["state"] == "delivered"
    assert done.state is State.DELIVERED and done.notify_state is None


async def replay_ends_in_flight(
    make_config: Any,
    journal: Journal,
    monkeypatch: Any,
    partner: MockAdapter,
    key: str,
    state: State,
) -> tuple[str, Stepping, Exchange]:
    """A refusal's callback resent under ``key``; while the source takes the resend, the
    exchange is replayed and the worker runs it (the local system answering as ``partner``)
    until it is ``state``; the notifier runs until nothing is pending. The exchange's id, the
    receiver, the exchange."""
    receiver = Stepping(secrets=[new_secret()])
    async with listening(receiver):
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = await rejected_then_resent(journal, catalogue, partner, key)

        async def replay_and_end() -> None:
            await replayed(journal, xid, Mode.RESEND)
            await worked(journal, catalogue, partner, xid, state)

        receiver.step = replay_and_end
        done = await until_quiet(journal, catalogue, xid)
    return xid, receiver, done


async def test_a_replay_while_the_resent_callback_is_in_flight_sends_each_once(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """The exchange is replayed and delivered while the resent callback is on its way (the
    replay frees the notifier's lease): the resent callback's delivery is journalled all the
    same, and the replay's `delivered` follows it; neither is sent twice."""
    partner = MockAdapter(sequence(permanent(), reply({"status": "ok", "ref": "HK-1"})))
    xid, receiver, done = await replay_ends_in_flight(
        make_config, journal, monkeypatch, partner, "replay-in-flight", State.DELIVERED
    )
    keys = [h["idempotency-key"] for h, _, _ in receiver.got]
    assert keys == [f"{xid}:rejected", f"{xid}:rejected", f"{xid}:delivered"]
    assert callbacks_after_resend(done) == [
        ("callback_delivered", "rejected", None),
        ("callback_delivered", "delivered", None),
    ]
    assert done.state is State.DELIVERED and done.notify_state is None
