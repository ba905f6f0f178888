"""Reading a history for a takeover: the delivery an instance that lost its lease appended, and an
attempt whose end only its taker presumed (federation/runtime/ends.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from federation.domain.models import Event, Exchange, Outcome, State
from federation.runtime.ends import awaiting_own_end, delivered_end
from tests.unit.test_models import EXCHANGE_ID, exchange


def ended(attempt: int, outcome: str, *, timed: bool = True, **data: Any) -> Event:
    """An attempt's end; untimed, the end a taker presumes (unknown, no owner)."""
    timing = {"duration_ms": 12.5, "owner": f"w{attempt}"} if timed else {}
    body = {"attempt": attempt, "outcome": outcome, **timing, **data}
    return Event(exchange_id=EXCHANGE_ID, kind="attempt_finished", at=100.0 + attempt, data=body)


def history(*events: Event, state: State = State.DELIVERING) -> Exchange:
    """An exchange to hk holding ``events``, as many attempts made as they number."""
    attempts = max((int(e.data.get("attempt", 0)) for e in events), default=0)
    return replace(exchange(*events, state=state), attempts=attempts)


def test_a_delivery_appended_after_the_takers_presumed_end_is_found_with_its_receipt() -> None:
    """Attempt 1 presumed unknown by its taker, then its own worker's delivery appended with
    the receipt and a receipt error, then the taker's refused attempt 2: the delivery is found,
    numbered 1, with its owner, receipt and receipt error."""
    receipt = {"receipt_number": "HK-1"}
    problem = {"kind": "receipt", "message": "did not map"}
    found = delivered_end(
        history(
            ended(1, "unknown_outcome", timed=False),
            ended(1, "delivered", receipt=receipt),
            Event(
                exchange_id=EXCHANGE_ID, kind="receipt_invalid", at=101.5, data={"error": problem}
            ),
            ended(2, "permanent_error", error={"kind": "permanent_error", "status": 409}),
        )
    )
    assert found is not None and found.outcome is Outcome.DELIVERED
    assert (found.number, found.owner, found.receipt) == (1, "w1", receipt)
    assert found.receipt_error == problem


def test_a_delivery_before_a_replay_does_not_settle_what_the_replay_sends() -> None:
    """A replay sends again on purpose: a delivery before it is not one to settle by."""
    replayed = Event(
        exchange_id=EXCHANGE_ID, kind="replayed", at=150.0, data={"attempts_before": 1}
    )
    assert delivered_end(history(ended(1, "delivered"), replayed)) is None
    assert (
        delivered_end(history(ended(1, "delivered"), replayed, ended(2, "permanent_error"))) is None
    )
    again = delivered_end(history(ended(1, "delivered"), replayed, ended(2, "delivered")))
    assert again is not None and again.number == 2


def test_an_attempt_whose_end_only_its_taker_presumed_awaits_its_own() -> None:
    """A presumed end alone awaits the attempt's own; the own end appended (before or after
    the presumed one) ends the wait; ends of other attempts do not."""
    presumed = ended(1, "unknown_outcome", timed=False)
    assert awaiting_own_end(history(presumed, ended(2, "permanent_error")))
    assert not awaiting_own_end(history(presumed, ended(1, "delivered")))
    assert not awaiting_own_end(history(ended(1, "transient_error"), presumed))
    assert not awaiting_own_end(history(ended(1, "transient_error"), ended(2, "delivered")))
