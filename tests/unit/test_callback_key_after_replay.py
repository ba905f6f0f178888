"""The mark (the end of its key) a callback or notice of an end goes by, read from the history: the
n-th time an exchange ends in a state is ``<state>:<n>``, the first time the plain state; a
resend keeps the mark it sends again."""

from __future__ import annotations

from typing import Any

from federation.domain.models import Direction, Event, Exchange, State
from federation.runtime.callbacks import Due, due_callback
from federation.runtime.owed import owed, step_of

XID = "01JD0000000000000000000000"
Step = tuple[str, dict[str, Any]]


def history(state: State, *events: Step, inbound: bool = False) -> Exchange:
    """An exchange in ``state`` with these events."""
    return Exchange(
        id=XID,
        direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
        source="hk" if inbound else "gd-portal",
        target="local" if inbound else "hk",
        service="TD-VL-RENEW",
        idempotency_key="k",
        request_hash="h",
        state=state,
        application={},
        created_at=1.0,
        updated_at=1.0,
        events=tuple(
            Event(exchange_id=XID, kind=k, at=float(n), data=d) for n, (k, d) in enumerate(events)
        ),
    )


def replay(after: State) -> Step:
    return ("replayed", {"mode": "resend", "from_state": after.value})


def told(mark: str, kind: str = "callback_delivered") -> Step:
    return (kind, {"state": mark})


DELIVERY: Step = ("attempt_finished", {"outcome": "delivered"})
REFUSED = told("rejected")


def test_an_end_never_replayed_keeps_its_plain_mark() -> None:
    """Nothing changes for an exchange never replayed: each end state as it always was."""
    for state in (State.DELIVERED, State.REJECTED, State.FAILED, State.UNCONFIRMED):
        assert due_callback(history(state), state.value) == Due(mark=state.value, tries=0)


def test_the_same_end_after_a_replay_is_numbered() -> None:
    """Refused, replayed, refused again: rejected:2; replayed once more and refused: rejected:3;
    a different end after a replay is the first of its kind (delivered), then delivered:2."""
    again = history(State.REJECTED, REFUSED, replay(State.REJECTED))
    assert due_callback(again, "rejected").mark == "rejected:2"
    third = history(
        State.REJECTED, REFUSED, replay(State.REJECTED), told("rejected:2"), replay(State.REJECTED)
    )
    assert due_callback(third, "rejected").mark == "rejected:3"
    delivered = history(State.DELIVERED, REFUSED, replay(State.REJECTED))
    assert due_callback(delivered, "delivered").mark == "delivered"
    twice = history(
        State.DELIVERED,
        REFUSED,
        replay(State.REJECTED),
        told("delivered"),
        replay(State.DELIVERED),
    )
    assert due_callback(twice, "delivered").mark == "delivered:2"
    unconfirmed = history(State.UNCONFIRMED, told("unconfirmed"), replay(State.UNCONFIRMED))
    assert due_callback(unconfirmed, "unconfirmed").mark == "unconfirmed:2"


def test_an_end_still_pending_while_the_exchange_is_replayed_keeps_its_key() -> None:
    """The first refusal's callback is being retried when the exchange is replayed (it is on its
    way again, not ended): its tries go on under rejected, the key its first try had."""
    in_flight = history(State.QUEUED, told("rejected", "callback_failed"), replay(State.REJECTED))
    assert due_callback(in_flight, "rejected").mark == "rejected"


def test_a_resend_keeps_the_mark_it_resends() -> None:
    """A resend of the second refusal goes as rejected:2 (the mark its outcome named); one of an
    older release's plain mark, written since the last replay, stands as it was sent."""
    events = (REFUSED, replay(State.REJECTED), told("rejected:2"))
    resent = history(State.REJECTED, *events, ("callback_replayed", {"state": "rejected:2"}))
    assert due_callback(resent, "rejected:2").mark == "rejected:2"
    older = (REFUSED, replay(State.REJECTED), told("rejected"))
    legacy = history(State.REJECTED, *older, ("callback_replayed", {"state": "rejected"}))
    assert due_callback(legacy, "rejected").mark == "rejected"


def test_a_resend_overtaken_by_a_replays_end_goes_first_under_its_own_key() -> None:
    """The first refusal is resent; before it goes out the exchange is replayed and refused again
    (its mark written over the resend's): the resend goes first as rejected, then rejected:2."""
    events = (REFUSED, ("callback_replayed", {"state": "rejected"}), replay(State.REJECTED))
    ex = history(State.REJECTED, *events)
    assert due_callback(ex, "rejected") == Due(mark="rejected", tries=0, last=False)
    sent = history(State.REJECTED, *events, told("rejected"))
    assert due_callback(sent, "rejected") == Due(mark="rejected:2", tries=0)


def test_a_partner_is_owed_a_notice_for_a_replayed_delivery() -> None:
    """An application a partner filed, delivered to the local system (notice delivered), then
    replayed and delivered again: delivered:2 is owed, telling the step submitted."""
    ex = history(
        State.DELIVERED,
        DELIVERY,
        told("delivered", "notice_delivered"),
        replay(State.DELIVERED),
        DELIVERY,
        inbound=True,
    )
    [due] = owed(ex, "delivered")
    assert (due.mark, due.event, step_of(due.mark)) == ("delivered:2", 3, "submitted")


def test_a_late_delivery_of_the_same_sending_is_no_new_notice() -> None:
    """Two instances both delivered one sending (one after losing its lease): one step."""
    ex = history(
        State.DELIVERED, DELIVERY, told("delivered", "notice_delivered"), DELIVERY, inbound=True
    )
    assert [q.mark for q in owed(ex, "delivered")] == ["delivered"]  # the mark as it stands
    pending = history(State.DELIVERED, DELIVERY, DELIVERY, inbound=True)
    assert [q.mark for q in owed(pending, "delivered")] == ["delivered"]


def test_a_partner_hears_a_second_refusal_as_a_notice_of_its_own() -> None:
    """An end short of the local system, again after a replay: rejected:2, its tries its own."""
    ex = history(
        State.REJECTED,
        told("rejected", "notice_delivered"),
        replay(State.REJECTED),
        ("notice_attempt", {"state": "rejected:2"}),
        inbound=True,
    )
    [due] = owed(ex, "rejected")
    assert (due.mark, due.attempts, step_of(due.mark)) == ("rejected:2", 1, "rejected")
