"""Reading a history for a takeover: the delivery an instance that lost its lease appended, and an
attempt whose end only its taker presumed (federation/runtime/ends.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from federation.config.model import Timeouts
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


TIMEOUTS = Timeouts(total=30.0)
LEASE = 20.0  # the window: 50 s after the presumed end (at 101.0)


def awaiting(exchange: Exchange, now: float = 102.0) -> bool:
    """awaiting_own_end at ``now`` (just after the takeover unless said)."""
    return awaiting_own_end(exchange, now=now, timeouts=TIMEOUTS, lease=LEASE)


def test_an_attempt_whose_end_only_its_taker_presumed_awaits_its_own() -> None:
    """A presumed end alone awaits the attempt's own; the own end appended (before or after
    the presumed one) ends the wait; ends of other attempts do not."""
    presumed = ended(1, "unknown_outcome", timed=False)
    assert awaiting(history(presumed, ended(2, "permanent_error")))
    assert not awaiting(history(presumed, ended(1, "delivered")))
    assert not awaiting(history(ended(1, "transient_error"), presumed))
    assert not awaiting(history(ended(1, "transient_error"), ended(2, "delivered")))


def test_a_presumed_end_is_final_once_the_partners_total_timeout_and_a_lease_have_passed() -> None:
    """The taken-over attempt may be in flight until the partner's total timeout plus the lease
    have passed since its presumed end (at 101.0): awaited at 150.9, no longer at 151.0 or later
    (its worker died, or gave the request up by then); the window counts from the presumed end
    of the attempt, whichever attempts follow."""
    taken = history(ended(1, "unknown_outcome", timed=False), ended(2, "permanent_error"))
    assert awaiting(taken, now=150.9)
    assert not awaiting(taken, now=151.0)
    assert not awaiting(taken, now=1000.0)
    longer = awaiting_own_end(taken, now=170.0, timeouts=Timeouts(total=60.0), lease=LEASE)
    assert longer  # a partner given more time to answer keeps it in flight longer


def test_a_delivery_appended_after_the_window_is_found_all_the_same() -> None:
    """The window bounds the wait for a refusal only: a delivery appended late is still the
    partner's yes, found by delivered_end whatever the time."""
    late = Event(
        exchange_id=EXCHANGE_ID,
        kind="attempt_finished",
        at=900.0,
        data={"attempt": 1, "outcome": "delivered", "duration_ms": 1.0, "owner": "w1"},
    )
    taken = history(ended(1, "unknown_outcome", timed=False), ended(2, "permanent_error"), late)
    assert not awaiting(taken, now=1000.0)
    found = delivered_end(taken)
    assert found is not None and (found.number, found.owner) == (1, "w1")
