"""A callback the source took (2xx) while a replay landed: the replay frees the notifier's lease,
so the delivery is journalled without clearing the mark, which stays pending. It is not sent
again: a second try would be built from the exchange as it now stands (a queued replay's time,
not the resend's record), another body under the same key. The replay's own end, once it comes,
goes under its own key. Through the worker, the replay service and the notifier, to the
source's receiver on loopback; on SQLite, PostgreSQL and the in-memory journal alike.
"""

from __future__ import annotations

from typing import Any

import orjson

from federation.domain.models import Exchange, State
from federation.runtime.catalogue import Catalogue
from federation.testing import MockAdapter, permanent, sequence
from replay.journal import Journal
from replay.service import Mode
from tests.integration.test_background_loops import due
from tests.integration.test_callback_resend import (
    Receiver,
    Stepping,
    listening,
    new_secret,
    signed_source,
    until_quiet,
)
from tests.integration.test_callback_resend_replay import (
    callbacks_after_resend,
    rejected_then_resent,
    replay_ends_in_flight,
    replayed,
    worked,
)


def sent(receiver: Receiver) -> list[tuple[str, dict[str, Any]]]:
    """What the source took: each callback's key and body."""
    return [(h["idempotency-key"], orjson.loads(body)) for h, body, _ in receiver.got]


def tried(done: Exchange) -> list[tuple[str, str]]:
    """Every callback outcome journalled: (kind, mark)."""
    return [(e.kind, e.data["state"]) for e in done.events if e.kind.startswith("callback_")]


async def replay_in_flight(
    journal: Journal, catalogue: Catalogue, receiver: Stepping, partner: MockAdapter, xid: str
) -> Exchange:
    """The exchange replayed while the receiver takes the pending callback (the replay stays
    queued: no worker runs); the notifier runs until nothing is pending."""

    async def replay() -> None:
        await replayed(journal, xid, Mode.RESEND)

    receiver.step = replay
    done = await until_quiet(journal, catalogue, xid)
    assert done.state is State.QUEUED  # the replay is still to be sent
    return done


async def then_refused_again(
    journal: Journal, catalogue: Catalogue, partner: MockAdapter, xid: str
) -> Exchange:
    """The worker sends the replay, the partner refuses it again; the notifier runs."""
    await worked(journal, catalogue, partner, xid, State.REJECTED)
    return await until_quiet(journal, catalogue, xid)


async def test_a_resend_taken_while_a_replay_lands_is_not_sent_a_third_time(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """The resent `rejected` is taken as the replay lands: the source hears it twice in all
    (told, resent), the same body both times; the replay's refusal follows as `rejected:2`."""
    partner = MockAdapter(sequence(permanent(422), permanent(409)))
    receiver = Stepping(secrets=[new_secret()])
    async with listening(receiver):
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = await rejected_then_resent(journal, catalogue, partner, "told-resend")
        done = await replay_in_flight(journal, catalogue, receiver, partner, xid)
        (first, told), (again, resent) = sent(receiver)
        assert first == again == f"{xid}:rejected"
        assert resent == told  # one key, one body
        assert callbacks_after_resend(done) == [("callback_delivered", "rejected", None)]
        done = await then_refused_again(journal, catalogue, partner, xid)
    keys = [key for key, _ in sent(receiver)]
    assert keys == [f"{xid}:rejected"] * 2 + [f"{xid}:rejected:2"]
    assert callbacks_after_resend(done) == [
        ("callback_delivered", "rejected", None),
        ("callback_delivered", "rejected:2", None),
    ]
    assert done.notify_state is None


async def test_a_first_callback_taken_while_a_replay_lands_is_sent_once(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """No resend: the first `rejected` is taken as the replay lands; it is not sent again with
    the replay's time, and the replay's refusal follows as `rejected:2`."""
    partner = MockAdapter(sequence(permanent(422), permanent(409)))
    receiver = Stepping(secrets=[new_secret()])
    async with listening(receiver):
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = (await due(journal, "told-first")).id
        await worked(journal, catalogue, partner, xid, State.REJECTED)
        done = await replay_in_flight(journal, catalogue, receiver, partner, xid)
        assert [key for key, _ in sent(receiver)] == [f"{xid}:rejected"]
        assert tried(done) == [("callback_delivered", "rejected")]
        done = await then_refused_again(journal, catalogue, partner, xid)
    (_, told), (key, again) = sent(receiver)
    assert key == f"{xid}:rejected:2" and again["at"] != told["at"]
    assert tried(done) == [
        ("callback_delivered", "rejected"),
        ("callback_delivered", "rejected:2"),
    ]


async def test_a_resend_taken_while_a_replay_ends_is_followed_by_the_new_end(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """The replay is sent and refused again while the resent `rejected` is being taken: the
    replay's refusal is still sent, once, as `rejected:2` (its own key, not a repeat)."""
    partner = MockAdapter(sequence(permanent(422), permanent(409)))
    xid, receiver, done = await replay_ends_in_flight(
        make_config, journal, monkeypatch, partner, "told-ended", State.REJECTED
    )
    keys = [key for key, _ in sent(receiver)]
    assert keys == [f"{xid}:rejected"] * 2 + [f"{xid}:rejected:2"]
    assert callbacks_after_resend(done) == [
        ("callback_delivered", "rejected", None),
        ("callback_delivered", "rejected:2", None),
    ]


async def test_a_callback_abandoned_as_a_replay_lands_gets_no_try_past_its_policy(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """The source is down; the callback's last try by the policy (two) is on its way as the
    replay lands: it is abandoned there, not tried a third time with the replay's time."""
    partner = MockAdapter(sequence(permanent(422), permanent(409)))
    receiver = Stepping(secrets=[new_secret()], down=True)
    async with listening(receiver):
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = (await due(journal, "told-abandoned")).id
        await worked(journal, catalogue, partner, xid, State.REJECTED)

        async def replay() -> None:
            await replayed(journal, xid, Mode.RESEND)

        async def first() -> None:
            receiver.step = replay  # on the second try

        receiver.step = first
        done = await until_quiet(journal, catalogue, xid)
        assert done.state is State.QUEUED
    assert [key for key, _ in sent(receiver)] == [f"{xid}:rejected"] * 2
    assert tried(done) == [("callback_failed", "rejected"), ("callback_abandoned", "rejected")]
