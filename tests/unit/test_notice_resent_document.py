"""Which notice a pending notice resend sends: the one its ``notice_replayed`` recorded."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from federation.domain.models import Event, Exchange, State, iso
from federation.runtime.notices import document_for, told
from federation.runtime.owed import owed
from tests.unit.hk_exchanges import XID, hk_exchange

ASKED = 50.0  # when support staff resent it


def refused(*events: tuple[str, dict[str, Any]], updated_at: float = 10.0) -> Exchange:
    """An application hk filed that the local system refused (at 10.0), ``events`` after."""
    history = [("attempt_finished", {"outcome": "permanent_error"}), *events]
    return hk_exchange(
        State.REJECTED,
        "HKDPO-2026-0401",
        tuple(
            Event(
                exchange_id=XID,
                kind=kind,
                at=ASKED if kind == "notice_replayed" else float(n),
                data=data,
            )
            for n, (kind, data) in enumerate(history)
        ),
        updated_at=updated_at,
        receipt={"receipt_number": "GD-1"},
    )


RECORD = {"resends": {"at": 10.0, "state": "rejected", "receipt": {"receipt_number": "GD-1"}}}
TOLD = ("notice_delivered", {"state": "rejected"})
RESENT = ("notice_replayed", {"state": "rejected", "reason": "r", "by": "s", **RECORD})


def test_a_resent_end_with_no_step_is_the_notice_it_resends() -> None:
    """The refusal's notice (no step event: built from the exchange) is resent, then a replay
    refused it anew with another receipt and a later time: the resend is owed first, as it
    was (its time and receipt), timed from when it was asked for; the new refusal after it."""
    later = refused(TOLD, RESENT, ("replayed", {"from_state": "rejected"}), updated_at=90.0)
    later = replace(later, receipt={"receipt_number": "GD-2"})
    first, *rest = owed(later, "rejected")
    assert (first.mark, first.event, first.since) == ("rejected", None, ASKED)
    assert [q.mark for q in rest] == ["rejected:2"]
    then = told(later, first)
    assert then.receipt == {"receipt_number": "GD-1"}
    doc = document_for(then, first.mark, first.event)
    assert doc["at"] == iso(10.0) and doc["original"]["receipt"] == {"receipt_number": "GD-1"}


def test_a_resend_of_an_earlier_release_is_built_from_the_exchange_as_it_stands() -> None:
    """A ``notice_replayed`` without the record: the exchange as it stands, as before."""
    legacy = ("notice_replayed", {"state": "rejected", "reason": "r", "by": "s"})
    ex = replace(refused(TOLD, legacy, updated_at=90.0), receipt={"receipt_number": "GD-2"})
    [due] = owed(ex, "rejected")
    assert due.resend is None and told(ex, due) is ex
    assert document_for(ex, due.mark, due.event)["at"] == iso(90.0)
