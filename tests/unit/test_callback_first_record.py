"""Which record a callback is built from, and how many tries it has had: every send under one key
is built from the first event that recorded its message (a resend's ``callback_replayed``, or
the ``replayed`` event of a replay of the end it tells: the n-th replay from a state follows the
end ``<state>:<n>``), and the failed tries the history shows since the mark was armed count,
one the row's count missed too."""

from __future__ import annotations

from typing import Any

from federation.domain.models import State
from federation.runtime.callbacks import due_callback, message_of
from federation.runtime.owed import first_record
from tests.unit.test_callback_key_after_replay import history, told
from tests.unit.test_callback_resent_message import resent

ERROR = {"kind": "permanent_error", "message": "hk refused", "status": 422, "form": 2}


def ended(at: float, state: str = "rejected") -> dict[str, Any]:
    return {"at": at, "state": state, "receipt": None}


def replay(state: str, at: float) -> tuple[str, dict[str, Any]]:
    """A replay of the end ``state``, recording it as it stood at ``at``."""
    data = {"mode": "resend", "from_state": state, "ended": ended(at, state), "error": ERROR}
    return ("replayed", data)


def failed(mark: str) -> tuple[str, dict[str, Any]]:
    return ("callback_failed", {"state": mark})


def test_a_pending_end_replayed_meanwhile_is_built_from_the_replays_record() -> None:
    """`rejected` failed once, then the exchange was replayed (queued): the retry is built from
    the replay's record of that end, and the failed try counts."""
    ex = history(State.QUEUED, failed("rejected"), replay("rejected", 3.5))
    due = due_callback(ex, "rejected")
    assert due.mark == "rejected" and due.tries == 1
    assert due.resend is not None and due.resend.data["ended"] == ended(3.5)


def test_the_nth_replay_from_a_state_records_the_nth_end() -> None:
    """Refused, replayed, refused again, replayed again: `rejected` is the first replay's
    record, `rejected:2` the second's; a key no replay followed has none."""
    ex = history(
        State.QUEUED,
        replay("rejected", 1.0),
        told("rejected:2"),
        replay("rejected", 2.0),
    )
    assert [first_record(ex, key) for key in ("rejected", "rejected:2", "rejected:3")] == [
        0,
        2,
        None,
    ]


def test_a_second_resend_keeps_what_the_first_recorded() -> None:
    """Told, resent (recording the end at 3.5), delivered; the exchange's last change is now the
    first resend's write: a second resend records, and is built from, the first's record."""
    first = {"resends": ended(3.5), "error": ERROR}
    ex = history(State.REJECTED, told("rejected"), resent("rejected", first), told("rejected"))
    ex = ex.evolved(updated_at=9.0, last_error=ERROR)
    assert message_of(ex, "rejected") == first
    again = history(
        State.REJECTED,
        told("rejected"),
        resent("rejected", first),
        told("rejected"),
        resent("rejected", {"resends": ended(9.0), "error": ERROR}),
    )
    due = due_callback(again, "rejected")
    assert due.resend is not None and due.resend.data["resends"] == ended(3.5)


def test_an_earlier_releases_replay_records_nothing() -> None:
    """A `replayed` event with no record (an earlier release's): the exchange as it stands."""
    ex = history(State.QUEUED, ("replayed", {"mode": "resend", "from_state": "rejected"}))
    assert due_callback(ex, "rejected").resend is None


def test_failed_tries_count_since_the_mark_was_last_armed() -> None:
    """Two failed tries then abandoned, resent, one failed try journalled without the row's
    count: the resend has had one try, not three, nor none."""
    ex = history(
        State.REJECTED,
        failed("rejected"),
        failed("rejected"),
        ("callback_abandoned", {"state": "rejected"}),
        resent("rejected", {"resends": ended(3.5)}),
        failed("rejected"),
    )
    assert due_callback(ex, "rejected").tries == 1
