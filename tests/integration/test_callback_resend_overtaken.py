"""A resent callback overtaken by a replay's end: support staff resend the callback of an end the
source says it never got, and before the notifier sends it the exchange is replayed to a new
end. The resent callback goes out as the message it resends (that end's state, receipt, errors
and time, under that end's key), and the new end as a message of its own, under its own key.
Through the broker's worker and notifier, to the source's own receiver on loopback; on SQLite,
PostgreSQL and the in-memory journal alike.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from adapters.base import Reply
from federation.cli.journal import masked_exchange
from federation.domain.errors import AdapterError
from federation.domain.models import Event, State, json_default
from federation.domain.texts import said
from federation.domain.words import shown_error, shown_in
from federation.logging import MASK
from federation.runtime.callbacks import rearm, resend_callback
from federation.runtime.catalogue import Catalogue
from federation.runtime.delivery import standing_errors
from federation.testing import MockAdapter, permanent, reply, sequence
from replay.journal import Journal
from replay.service import Mode
from tests.integration.test_background_loops import due
from tests.integration.test_callback_resend import (
    Receiver,
    Stepping,
    ended,
    listening,
    new_secret,
    signed_source,
    source_config,
    until_quiet,
)
from tests.integration.test_callback_resend_replay import replayed, worked

# (the partner's answers, the first end, the replay's end, the key of the replay's end's message)
CASES: dict[str, tuple[tuple[Reply | AdapterError, ...], State, State, str]] = {
    "refused, then delivered": (
        (permanent(422), reply({"status": "ok", "ref_no": "HK-1"})),
        State.REJECTED,
        State.DELIVERED,
        "delivered",
    ),
    "refused, then refused anew": (
        (permanent(422), permanent(409)),
        State.REJECTED,
        State.REJECTED,
        "rejected:2",
    ),
    "delivered, then delivered anew": (
        (reply({"status": "ok", "ref_no": "HK-1"}), reply({"status": "ok", "ref_no": "HK-2"})),
        State.DELIVERED,
        State.DELIVERED,
        "delivered:2",
    ),
}


def bodies(receiver: Receiver) -> list[tuple[str, dict[str, Any]]]:
    """What the source's receiver got: (Idempotency-Key, the JSON body) of each request."""
    return [(h["idempotency-key"], orjson.loads(body)) for h, body, _ in receiver.got]


async def ended_and_resent(
    journal: Journal, catalogue: Catalogue, partner: MockAdapter, key: str, first: State
) -> str:
    """An application sent by the worker that ended in ``first``, its source told so once, and
    whose callback support staff then resend: the resend is pending when this returns. Its id."""
    xid = (await due(journal, key)).id
    await worked(journal, catalogue, partner, xid, first)
    await until_quiet(journal, catalogue, xid)
    mark = await resend_callback(
        journal, catalogue.config, xid, reason="portal lost it", by="support-1", clock=time.time
    )
    assert mark == first.value
    return xid


@pytest.mark.parametrize("case", CASES)
async def test_a_resent_callback_overtaken_by_a_replay_is_the_message_it_resends(
    make_config: Any, journal: Journal, monkeypatch: Any, case: str
) -> None:
    """The resend is pending, the exchange is replayed and ends anew before the notifier runs:
    the resent callback is the first end's message again, body and key alike, and the replay's
    end goes out after it with its own fields under its own key."""
    answers, first, then, new_key = CASES[case]
    partner = MockAdapter(sequence(*answers))
    async with listening(Receiver(secrets=[new_secret()])) as receiver:
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = await ended_and_resent(journal, catalogue, partner, f"overtaken-{case}", first)
        await replayed(journal, xid, Mode.RESEND)
        await worked(journal, catalogue, partner, xid, then)
        done = await until_quiet(journal, catalogue, xid)
    got = bodies(receiver)
    assert [k for k, _ in got] == [f"{xid}:{first.value}"] * 2 + [f"{xid}:{new_key}"]
    (_, told), (_, resent), (_, outcome) = got
    assert resent == told  # the same message: a source that applies it changes nothing
    assert outcome["state"] == then.value
    assert outcome["at"] != told["at"]
    errors = [shown_error(e, clear=True, mask=MASK) for e in standing_errors(done)]
    assert [outcome[k] for k in ("receipt", "last_error", "previous_error")] == [
        done.receipt,
        *errors,
    ]
    assert all(ok for _, _, ok in receiver.got)
    assert done.state is then and done.notify_state is None


async def test_a_resent_callback_tried_while_the_replay_runs_is_the_message_it_resends(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """The exchange is replayed as the resent callback reaches the source, which answers 503:
    its next tries go while the replay is still queued, and are the first end's message all
    the same (its time included); the replay's end, a refusal in other words, then goes under
    its own key with its own error."""
    partner = MockAdapter(sequence(permanent(422), permanent(409)))
    receiver = Stepping(secrets=[new_secret()])
    async with listening(receiver):
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = await ended_and_resent(journal, catalogue, partner, "overtaken-live", State.REJECTED)

        async def replay_while_down() -> None:
            await replayed(journal, xid, Mode.RESEND)
            receiver.down = True

        receiver.step = replay_while_down
        await until_quiet(journal, catalogue, xid)  # both tries refused: abandoned
        receiver.down = False
        await worked(journal, catalogue, partner, xid, State.REJECTED)
        done = await until_quiet(journal, catalogue, xid)
    got = bodies(receiver)
    *resent, (last_key, outcome) = got
    (_, told), *tries = resent
    assert [k for k, _ in resent] == [f"{xid}:rejected"] * len(resent)
    assert len(tries) >= 2 and all(body == told for _, body in tries)
    assert last_key == f"{xid}:rejected:2"
    assert outcome["state"] == "rejected" and outcome["last_error"] != told["last_error"]
    assert [ok for _, _, ok in receiver.got] == [True] + [False] * len(tries) + [True]
    assert done.state is State.REJECTED and done.notify_state is None


async def test_a_resend_journalled_by_the_earlier_release_is_read_as_before(
    make_config: Any, journal: Journal, monkeypatch: Any
) -> None:
    """A ``callback_replayed`` journalled before resends kept their message (the mark, who and
    why only) and overtaken by a replay is still sent first under its key, as that release
    sent it (the exchange as it stands), then the replay's end under its own."""
    partner = MockAdapter(sequence(permanent(422), reply({"status": "ok", "ref_no": "HK-1"})))
    async with listening(Receiver(secrets=[new_secret()])) as receiver:
        catalogue = signed_source(make_config, receiver, monkeypatch)
        xid = (await due(journal, "overtaken-legacy")).id
        await worked(journal, catalogue, partner, xid, State.REJECTED)
        before = await until_quiet(journal, catalogue, xid)
        moved = said("moved")
        await rearm(
            journal, before, "callback_replayed", "rejected", moved, reason="r", by="s", at=1.0
        )
        await replayed(journal, xid, Mode.RESEND)
        await worked(journal, catalogue, partner, xid, State.DELIVERED)
        done = await until_quiet(journal, catalogue, xid)
    got = bodies(receiver)
    assert [k for k, _ in got] == [f"{xid}:rejected"] * 2 + [f"{xid}:delivered"]
    [legacy] = [e for e in done.events if e.kind == "callback_replayed"]
    assert legacy.data == {"state": "rejected", "reason": "r", "by": "s"}
    _, (_, resent), (_, outcome) = got
    assert resent["state"] == "rejected" and resent["receipt"] == done.receipt
    assert outcome["state"] == "delivered" and outcome["receipt"] == done.receipt
    assert done.notify_state is None


@pytest.mark.parametrize(
    "error",
    [
        # written before errors held the partner's words apart: folded into the message
        {"kind": "permanent_error", "message": "hk refused: 陳大文 A123456(3)", "status": 400},
        {
            "kind": "permanent_error",
            "message": "hk refused",
            "partner_message": "陳大文",
            "form": 2,
        },
        {
            "kind": "mapping",
            "message": "no map",
            "problems": [{"message": "'陳大文' is no number"}],
        },
    ],
)
async def test_a_resend_keeps_the_error_where_readers_see_it_masked(
    make_config: Any, journal: Journal, error: dict[str, Any]
) -> None:
    """The message a resend keeps holds the exchange's last error; an exchange shown to a reader
    who may not reveal (``tongban journal show`` without ``--reveal``, JSON) has the partner's
    words and the problems' messages masked there as in every other event."""
    catalogue = source_config(make_config, "    callback: http://127.0.0.1:9/outcomes\n")
    xid = await ended(journal, "masked-resend", State.REJECTED, last_error=error)
    now = time.time()
    await journal.claim_notifications(owner="n1", now=now, lease_until=now + 30, limit=5)
    told = Event(exchange_id=xid, kind="callback_delivered", at=now, data={"state": "rejected"})
    await journal.finish_notification(xid, [told], owner="n1", done=True)
    await resend_callback(journal, catalogue.config, xid, reason="r", by="s", clock=time.time)
    ex = await journal.get(xid)
    assert ex is not None
    [resend] = [e for e in ex.events if e.kind == "callback_replayed"]
    assert resend.data["error"] == error  # kept as it was, for the resent callback
    shown = masked_exchange(ex)
    timeline = [shown_in(e.data, clear=False, mask=MASK) for e in shown.events]
    assert "陳大文" not in orjson.dumps(timeline, default=json_default).decode()
