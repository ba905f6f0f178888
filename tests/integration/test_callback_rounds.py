"""A lifecycle step that comes again (a second correction round) is a JSON callback of its own:
its key is numbered as a notice's is, the same on its retries and when support staff resend it,
while the first round keeps the key it always had; on SQLite, PostgreSQL and the in-memory
journal alike, the source on loopback verifying each signature with the standardwebhooks
package."""

from __future__ import annotations

import time
from typing import Any

import orjson

from federation.runtime.callbacks import resend_callback
from federation.runtime.catalogue import Catalogue
from federation.runtime.lifecycle import record_lifecycle
from replay.journal import Journal
from tests.integration.test_callback_resend import (
    Receiver,
    ended,
    listening,
    new_secret,
    notifier,
    signed_source,
    with_event,
)


async def step(journal: Journal, catalogue: Catalogue, xid: str, state: str) -> None:
    """The partner reports ``state`` on ``xid`` (a status update, journalled and armed)."""
    exchange = await journal.get(xid)
    assert exchange is not None
    said = {"lifecycle": state}
    assert await record_lifecycle(journal, catalogue, exchange, said, said) == (state, True)


async def test_a_second_correction_round_has_a_key_of_its_own(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """correction_required, submitted, then correction_required again: the second round's
    callback goes as lifecycle:correction_required:2 (Idempotency-Key and webhook-id), the same
    on its retry and on a resend; the first round's keeps lifecycle:correction_required."""
    async with listening(Receiver(secrets=[new_secret()])) as receiver:
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = await ended(journal, "rounds")
        loop = notifier(journal, catalogue)
        loop.start()
        try:
            await with_event(journal, xid, "callback_delivered")
            for n, state in enumerate(("correction_required", "submitted"), start=2):
                await step(journal, catalogue, xid, state)
                await with_event(journal, xid, "callback_delivered", count=n)
            receiver.down = True  # the second round's first try fails
            await step(journal, catalogue, xid, "correction_required")
            await with_event(journal, xid, "callback_failed")
            receiver.down = False
            done = await with_event(journal, xid, "callback_delivered", count=4)
            mark = await resend_callback(
                journal, catalogue.config, xid, reason="lost it", by="s", clock=time.time
            )
            await with_event(journal, xid, "callback_delivered", count=5)
        finally:
            await loop.stop()
    second = f"{xid}:lifecycle:correction_required:2"
    keys = [h["idempotency-key"] for h, _, _ in receiver.got]
    assert keys == [
        f"{xid}:delivered",
        f"{xid}:lifecycle:correction_required",
        f"{xid}:lifecycle:submitted",
        second,  # the try that failed
        second,
        second,  # the resend
    ]
    assert all(h["webhook-id"] == h["idempotency-key"] for h, _, _ in receiver.got)
    assert [ok for _, _, ok in receiver.got] == [True, True, True, False, True, True]
    assert mark == "lifecycle:correction_required:2"
    body = orjson.loads(receiver.got[-1][1])
    assert body["lifecycle"] == "correction_required"
    assert [s["state"] for s in body["lifecycle_steps"]][-3:] == [
        "correction_required",
        "submitted",
        "correction_required",
    ]
    outcomes = [e.data["state"] for e in done.events if e.kind.startswith("callback_")]
    assert outcomes[-2:] == ["lifecycle:correction_required:2"] * 2
