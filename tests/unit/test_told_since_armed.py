"""Which pending mark has ended already (its outcome journalled by a try whose lease a replay
freed): finished without sending, for callbacks and notices alike."""

from __future__ import annotations

from federation.domain.models import State
from federation.runtime.callbacks import OUTCOMES, due_callback
from federation.runtime.owed import SETTLED, owed, told_since_armed
from tests.unit.test_callback_key_after_replay import history, replay

RESEND = ("callback_replayed", {"state": "rejected", "reason": "r", "by": "s"})
TOOK = ("callback_delivered", {"state": "rejected", "status": 204})


def test_an_outcome_after_the_resend_while_a_replay_is_queued_is_told() -> None:
    """Resent, replay landed, the resend's delivery appended: told, nothing to send."""
    ex = history(State.QUEUED, TOOK, RESEND, replay(State.REJECTED), TOOK)
    assert told_since_armed(ex, "rejected", OUTCOMES)
    assert due_callback(ex, "rejected").told


def test_a_resend_not_yet_tried_is_not_told() -> None:
    """The outcome before the resend is the one it sends again: owed."""
    ex = history(State.QUEUED, TOOK, RESEND, replay(State.REJECTED))
    assert not told_since_armed(ex, "rejected", OUTCOMES)
    assert not due_callback(ex, "rejected").told


def test_an_ended_exchange_is_never_told() -> None:
    """Ended again: the new end's key is numbered (rejected:2) and owed; an ended exchange's
    mark is sent as the history says, as before."""
    ex = history(State.REJECTED, TOOK, replay(State.REJECTED), TOOK)
    assert not told_since_armed(ex, "rejected", OUTCOMES)
    due = due_callback(ex, "rejected")
    assert (due.mark, due.told) == ("rejected:2", False)


def test_a_first_callback_taken_as_a_replay_lands_is_told() -> None:
    """No resend: the end's callback delivered after the replay landed."""
    ex = history(State.QUEUED, replay(State.REJECTED), TOOK)
    assert due_callback(ex, "rejected").told


def test_a_notice_taken_as_a_replay_lands_is_owed_nothing() -> None:
    """A partner's notice: nothing owed, so the mark is finished unsent."""
    delivery = ("attempt_finished", {"outcome": "delivered"})
    took = ("notice_delivered", {"state": "delivered", "status": 200})
    ex = history(State.QUEUED, delivery, replay(State.DELIVERED), took, inbound=True)
    assert told_since_armed(ex, "delivered", SETTLED)
    assert owed(ex, "delivered") == []
    pending = history(State.QUEUED, delivery, replay(State.DELIVERED), inbound=True)
    assert [q.mark for q in owed(pending, "delivered")] == ["delivered"]
