"""Which message a pending callback resend sends: the one its ``callback_replayed`` recorded
(``resends``, and the last error as the event's ``error``), while it is owed; an event of an
earlier release, which recorded none, leaves the exchange as it stands to be sent."""

from __future__ import annotations

from typing import Any

from federation.domain.models import State
from federation.runtime.callbacks import as_resent, due_callback, message_of
from tests.unit.test_callback_key_after_replay import DELIVERY, history, replay, told

ERROR = {"kind": "permanent_error", "message": "hk refused", "status": 422, "form": 2}
RECORD: dict[str, Any] = {
    "resends": {"at": 3.5, "state": "rejected", "receipt": None},
    "error": ERROR,
}
STEP = ("lifecycle", {"lifecycle": "accepted"})


def resent(mark: str, record: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    return ("callback_replayed", {"state": mark, "reason": "r", "by": "s", **(record or {})})


def test_a_resend_overtaken_by_a_replay_is_due_with_its_record() -> None:
    """Resent, then replayed and delivered before it went: the resend is due first, with the
    event that records its message; once it is delivered, the new end is due without it."""
    events = [told("rejected"), resent("rejected", RECORD), replay(State.REJECTED), DELIVERY]
    due = due_callback(history(State.DELIVERED, *events), "delivered")
    assert (due.mark, due.last) == ("rejected", False)
    assert due.resend is not None and due.resend.data["resends"] == RECORD["resends"]
    after = due_callback(history(State.DELIVERED, *events, told("rejected")), "delivered")
    assert (after.mark, after.resend) == ("delivered", None)


def test_a_resend_tried_while_the_replay_is_queued_is_due_with_its_record() -> None:
    """Resent, then replayed, and the replay not ended yet: the mark pending is the resend's,
    sent with its record."""
    events = [told("rejected"), resent("rejected", RECORD), replay(State.REJECTED)]
    due = due_callback(history(State.QUEUED, *events), "rejected")
    assert due.mark == "rejected" and due.resend is not None


def test_a_resend_of_the_earlier_release_has_no_record() -> None:
    """A callback_replayed with no record (an earlier release's) is due as that release had
    it: the exchange as it stands is the message."""
    events = [told("rejected"), resent("rejected"), replay(State.REJECTED), DELIVERY]
    due = due_callback(history(State.DELIVERED, *events), "delivered")
    assert (due.mark, due.last, due.resend) == ("rejected", False, None)


def test_the_exchange_as_resent_is_the_recorded_end_with_the_history_before_it() -> None:
    """The exchange the resent message is built from: the recorded state, receipt, error and
    time, and only the lifecycle steps journalled before the resend (not a later round's)."""
    record = {"resends": {"at": 3.5, "state": "delivered", "receipt": {"n": "HK-1"}}}
    events = [DELIVERY, STEP, told("lifecycle:accepted"), resent("lifecycle:accepted", record)]
    ex = history(State.DELIVERED, *events, replay(State.DELIVERED), DELIVERY, STEP).evolved(
        receipt={"n": "HK-2"}, last_error=ERROR
    )
    due = due_callback(ex, "lifecycle:accepted:2")
    assert due.mark == "lifecycle:accepted" and due.resend is not None
    then = as_resent(ex, due.resend)
    assert (then.state, then.receipt, then.last_error, then.updated_at) == (
        State.DELIVERED,
        {"n": "HK-1"},
        None,
        3.5,
    )
    assert [s["state"] for s in then.lifecycle()] == ["submitted", "accepted"]
    assert [s["state"] for s in ex.lifecycle()] == ["submitted", "accepted"] * 2


def test_the_record_is_the_exchange_as_it_stands_at_the_resend() -> None:
    """What a resend records: the end's state, receipt and time, and its last error as the
    event's error (none when it has none)."""
    ex = history(State.REJECTED).evolved(last_error=ERROR, receipt={"n": 1}, updated_at=9.0)
    assert message_of(ex) == {
        "resends": {"at": 9.0, "state": "rejected", "receipt": {"n": 1}},
        "error": ERROR,
    }
    assert "error" not in message_of(history(State.FAILED))
