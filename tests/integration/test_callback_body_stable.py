"""Every send of a JSON callback under one idempotency key is the same message: a second resend,
a second broker instance that takes the callback as a replay frees its lease, and a retry of a
callback that failed before a replay all carry the body the source was sent first (the end's
state, receipt, errors and ``at``), never the exchange as it stands after a resend's or a
replay's write. Through the worker, the replay service and the notifier, to the source's
receiver on loopback; on SQLite, PostgreSQL and the in-memory journal alike.
"""

from __future__ import annotations

import time
from typing import Any

from federation.domain.models import State
from federation.runtime.callbacks import resend_callback
from federation.testing import MockAdapter, permanent, sequence
from replay.journal import Journal
from replay.service import Mode
from tests.integration.test_background_loops import due
from tests.integration.test_callback_resend import (
    Receiver,
    Stepping,
    ended,
    listening,
    new_secret,
    notifier,
    signed_source,
    until_quiet,
    with_event,
)
from tests.integration.test_callback_resend_replay import replayed, worked
from tests.integration.test_callback_resend_told import sent
from tests.waiting import wait_for


def differences(first: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """The fields of two callback bodies that differ, each with both values."""
    return {
        k: (first.get(k), other.get(k))
        for k in first.keys() | other.keys()
        if first.get(k) != other.get(k)
    }


async def test_a_second_resend_is_the_message_the_first_resend_sent(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """Told `rejected`, then resent twice: the first resend's own write moved the exchange's
    last change, but the second resend carries the same `at` (and every other field) as the
    callback and the first resend did."""
    receiver = Receiver(secrets=[new_secret()])
    async with listening(receiver):
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = await ended(journal, "two-resends", State.REJECTED)
        await until_quiet(journal, catalogue, xid)
        for n in (1, 2):
            await resend_callback(
                journal, catalogue.config, xid, reason=f"lost it ({n})", by="s", clock=time.time
            )
            await until_quiet(journal, catalogue, xid)
    got = sent(receiver)
    assert [key for key, _ in got] == [f"{xid}:rejected"] * 3
    first = got[0][1]
    assert [differences(first, body) for _, body in got[1:]] == [{}, {}]


async def test_a_second_instance_that_takes_the_callback_as_a_replay_lands_sends_the_same_body(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """Instance n1's try at `rejected` is with the source when the exchange is replayed (which
    frees the callback's lease); instance n2 takes the callback still pending at once and sends
    it under the same key: with the body n1 sent (the end's time), not the queued replay's."""
    partner = MockAdapter(sequence(permanent(422), permanent(409)))
    receiver = Stepping(secrets=[new_secret()])
    async with listening(receiver):
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = (await due(journal, "two-instances")).id
        await worked(journal, catalogue, partner, xid, State.REJECTED)
        other = notifier(journal, catalogue, "n2")

        async def replay_then_other_instance() -> None:
            await replayed(journal, xid, Mode.RESEND)
            other.start()
            try:
                await with_event(journal, xid, "callback_delivered")  # n2's
            finally:
                await other.stop()

        receiver.step = replay_then_other_instance
        mine = notifier(journal, catalogue, "n1")
        mine.start()
        try:
            done = await with_event(journal, xid, "callback_delivered", count=2)
        finally:
            await mine.stop()
    assert done.state is State.QUEUED  # the replay is still to be sent
    got = sent(receiver)
    assert [key for key, _ in got] == [f"{xid}:rejected"] * 2
    (_, first), (_, again) = got
    assert differences(first, again) == {}


async def test_a_callback_that_failed_before_a_replay_is_retried_with_its_body(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """The source is down for the first try at `rejected`; the exchange is then replayed (and
    stays queued); the retry, due once the source is back, carries the body of the first try,
    not the queued replay's time."""
    partner = MockAdapter(sequence(permanent(422), permanent(409)))
    receiver = Receiver(secrets=[new_secret()], down=True)
    now = [time.time() + 1000.0]  # the notifier's clock, moved on by hand to make the retry due
    async with listening(receiver):
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = (await due(journal, "fail-then-replay")).id
        await worked(journal, catalogue, partner, xid, State.REJECTED)
        loop = notifier(journal, catalogue, "n1", lambda: now[0])
        loop.start()
        try:
            await with_event(journal, xid, "callback_failed")
            await replayed(journal, xid, Mode.RESEND)  # stays queued: no worker runs
            receiver.down = False
            now[0] += 10.0
            done = await wait_for(
                lambda: journal.get(xid),
                lambda ex: ex is not None and ex.notify_state is None,
                what="no callback pending",
            )
        finally:
            await loop.stop()
    assert done.state is State.QUEUED
    got = sent(receiver)
    assert [key for key, _ in got] == [f"{xid}:rejected"] * 2
    (_, first), (_, again) = got
    assert differences(first, again) == {}
