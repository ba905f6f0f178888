"""A resent callback in flight when a replay lands: the replay frees the notifier's lease, so
the try, refused by the source, is journalled without it. It counts all the same: the source
gets no more tries at the resent callback than the retry policy says. Through the worker, the
replay service and the notifier, to the source's receiver on loopback; on SQLite, PostgreSQL
and the in-memory journal alike.
"""

from __future__ import annotations

from typing import Any

from federation.domain.models import Exchange, State
from federation.testing import MockAdapter, permanent, sequence
from replay.journal import Journal
from replay.service import Mode
from tests.integration.test_callback_resend import (
    Stepping,
    listening,
    new_secret,
    signed_source,
    until_quiet,
)
from tests.integration.test_callback_resend_replay import (
    callbacks_after_resend,
    rejected_then_resent,
    replayed,
    worked,
)


async def resent_and_replayed_in_flight(
    make_config: Any, journal: Journal, monkeypatch: Any, *, ended: bool
) -> tuple[str, Stepping, Exchange]:
    """A refusal's callback resent; the source goes down (503) during the resend's first try,
    in which the exchange is replayed (and refused again if ``ended``, else left queued); the
    notifier runs until nothing is pending. The exchange's id, the receiver, the exchange."""
    partner = MockAdapter(sequence(permanent(422), permanent(409)))
    receiver = Stepping(secrets=[new_secret()])
    async with listening(receiver):
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = await rejected_then_resent(journal, catalogue, partner, f"lease-lost-{ended}")

        async def replay_while_down() -> None:
            await replayed(journal, xid, Mode.RESEND)
            if ended:
                await worked(journal, catalogue, partner, xid, State.REJECTED)
            receiver.down = True

        receiver.step = replay_while_down
        done = await until_quiet(journal, catalogue, xid)
    return xid, receiver, done


async def test_a_try_that_lost_its_lease_to_a_queued_replay_counts(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """The replay is still queued after the lost try: the resent callback is tried twice in
    all, as the notifier's policy says (two tries), then abandoned, not three times."""
    xid, receiver, done = await resent_and_replayed_in_flight(
        make_config, journal, monkeypatch, ended=False
    )
    keys = [h["idempotency-key"] for h, _, _ in receiver.got]
    assert keys == [f"{xid}:rejected"] * 3  # told once, then two tries
    assert callbacks_after_resend(done) == [
        ("callback_failed", "rejected", None),
        ("callback_abandoned", "rejected", 2),
    ]


async def test_a_try_that_lost_its_lease_to_an_ended_replay_counts(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """The replay has ended (refused again) by the time the lost try is journalled: the resent
    callback is tried twice in all, then the replay's end twice, each abandoned at its policy."""
    xid, receiver, done = await resent_and_replayed_in_flight(
        make_config, journal, monkeypatch, ended=True
    )
    keys = [h["idempotency-key"] for h, _, _ in receiver.got]
    assert keys == [f"{xid}:rejected"] * 3 + [f"{xid}:rejected:2"] * 2
    assert callbacks_after_resend(done) == [
        ("callback_failed", "rejected", None),
        ("callback_abandoned", "rejected", 2),
        ("callback_failed", "rejected:2", None),
        ("callback_abandoned", "rejected:2", 2),
    ]
