"""How a delivery attempt ends: the outcome and error an adapter's answer gives, and an end the
journal holds that the exchange's row does not show yet.

A worker that stalled past its lease appends its attempt's end to the history and leaves the row
to the instance that took it (``Delivery._ended``). An instance that claims the exchange after
that append finds the attempt in hand already ended: :func:`unsettled_end` reads that end, so the
delivery acts on it (settles a delivery, rejects, schedules a retry) instead of sending again. An
instance that claimed before the append presumes the attempt's outcome unknown and sends again;
while that presumed end stands alone (:func:`awaiting_own_end`), it reads the history again
before sending and after a failure, and a delivery appended meanwhile (:func:`delivered_end`)
settles the exchange: the partner's yes stands, whatever it answers the repeat. A refusal while
that attempt may still be in flight leaves the exchange unconfirmed; once the partner's total
timeout and a lease have passed since the takeover, it cannot be, and a refusal rejects it.

An adapter that fails with an error no adapter is meant to raise (a :class:`Crash`: a bug of ours
or of a library inside the adapter) ends its attempt of unknown outcome: the request may have
reached the partner before the error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import Reply
from federation.config.model import Timeouts
from federation.domain.errors import (
    AdapterError,
    PermanentError,
    UnknownOutcomeError,
    UnrecognisedReply,
)
from federation.domain.models import Event, Exchange, Outcome, State
from federation.domain.words import recorded

DELIVERED = Outcome.DELIVERED.value


@dataclass(frozen=True, kw_only=True)
class End:
    """An attempt's end as the journal holds it: what the next holder of the lease acts on."""

    number: int
    at: float
    outcome: Outcome
    owner: str | None = None  # the worker that made the attempt
    error: Mapping[str, Any] | None = None
    receipt: Mapping[str, Any] | None = None  # the mapped reply of a delivered attempt
    receipt_error: Mapping[str, Any] | None = None  # its reply did not map (receipt_invalid)
    retry_after: float | None = None  # the partner's Retry-After with a failure
    sent: bool = True  # the partner was asked (a contract refusal sends nothing)

    @property
    def unconfirmed(self) -> bool:
        """The partner answered in no way its reply rules recognise (the exchange ends so)."""
        return self.error is not None and self.error.get("kind") == State.UNCONFIRMED.value


@dataclass(frozen=True)
class Crash:
    """An adapter's send failed with an error that is not an AdapterError: ours to fix, not the
    partner's answer. Only its type is told (its message could quote the application)."""

    error: Exception

    @property
    def kind(self) -> str:
        """The error's type name, for the journal, the log and support staff."""
        return type(self.error).__name__

    def recorded(self) -> dict[str, Any]:
        """The attempt's error (and the exchange's last_error): unconfirmed, the request's fate
        unknown, the error named by its type."""
        return {
            "kind": State.UNCONFIRMED.value,
            "message": f"the adapter failed with an unexpected {self.kind}: "
            "whether the partner took the request is unknown",
            "exception": self.kind,
        }


def unsettled_end(exchange: Exchange) -> End | None:
    """The end of the attempt in hand (the row delivering, its attempt count) if the history
    holds one: appended by its worker after the lease was lost, or written with a retry-now
    decision before its worker stopped. None when the attempt has no end (it is in flight, or
    its worker died: the outcome is unknown)."""
    if exchange.state is not State.DELIVERING or not exchange.attempts:
        return None
    end: Event | None = None
    receipt_error: Mapping[str, Any] | None = None
    for event in exchange.events:
        if event.kind == "attempt_finished" and event.data.get("attempt") == exchange.attempts:
            end, receipt_error = event, None
        elif event.kind == "receipt_invalid" and end is not None:
            receipt_error = event.data.get("error")
    return None if end is None else _end(end, exchange.attempts, receipt_error)


def delivered_end(exchange: Exchange) -> End | None:
    """The end of an attempt the partner took, if the history holds one since the exchange was
    last replayed: a delivery appended by a worker that lost its lease after another instance
    had taken the exchange over (the taker presumed its outcome unknown and sent again)."""
    end: Event | None = None
    receipt_error: Mapping[str, Any] | None = None
    for event in exchange.events:
        if event.kind == "replayed":
            end = None  # sent again on purpose: an earlier delivery does not settle it
        elif event.kind == "attempt_finished" and event.data.get("outcome") == DELIVERED:
            end, receipt_error = event, None
        elif event.kind == "receipt_invalid" and end is not None:
            receipt_error = event.data.get("error")
    return None if end is None else _end(end, int(end.data["attempt"]), receipt_error)


def awaiting_own_end(exchange: Exchange, *, now: float, timeouts: Timeouts, lease: float) -> bool:
    """Does the history hold an attempt whose end only its taker presumed (unknown, untimed:
    written when another instance took the exchange over mid-attempt), its own worker's end not
    appended, that may still be in flight at ``now``? That worker may be alive, its request with
    the partner, and append it yet; but not once the partner's total timeout, plus ``lease`` (a
    margin for a process that stalled), has passed since the takeover (the presumed end's time):
    its request was answered or given up by then, and the presumed end is final. A worker that
    died never appends its end, so a refusal after that window is the partner's no."""
    window = timeouts.total + lease
    return any(now < at + window for at in presumed_alone(exchange).values())


def presumed_alone(exchange: Exchange) -> dict[int, float]:
    """The attempts (since the last replay) whose end only their taker presumed, their own
    worker's end not appended, and when each was presumed (the takeover): a late own end may
    still come, a delivery settling the exchange whenever it does (:func:`delivered_end`)."""
    presumed: dict[int, float] = {}
    own: set[int] = set()
    for event in exchange.events:
        if event.kind == "replayed":
            presumed.clear()
        elif event.kind == "attempt_finished":
            number = int(event.data["attempt"])
            if "duration_ms" in event.data:  # the presumed end is the untimed one
                own.add(number)
            else:
                presumed[number] = event.at
    return {number: at for number, at in presumed.items() if number not in own}


def _end(event: Event, number: int, receipt_error: Mapping[str, Any] | None) -> End:
    """The End that ``event`` (an ``attempt_finished``) records for attempt ``number``."""
    data = event.data
    retry_after = data.get("retry_after")
    error = data.get("error")
    # an answer has a status (a contract refusal before sending has neither answer nor status)
    sent = bool(data.get("response")) or (error or {}).get("status") is not None
    return End(
        number=number,
        at=event.at,
        outcome=Outcome(data["outcome"]),
        owner=data.get("owner"),
        error=error,
        receipt=data.get("receipt"),
        receipt_error=receipt_error,
        retry_after=None if retry_after is None else float(retry_after),
        sent=sent,
    )


def error_of(kind: str, exc: AdapterError) -> dict[str, Any]:
    """An attempt's error (and the exchange's last_error): with the partner's own code and
    message when its reply rules read them."""
    error: dict[str, Any] = {"kind": kind, "message": exc.message, "status": exc.status}
    if exc.partner_code is not None:
        error["partner_code"] = exc.partner_code
    if exc.partner_message is not None:
        error["partner_message"] = exc.partner_message
    return recorded(error)  # the partner's words apart from ours: readers may not all see them


def outcome_label(result: Reply | AdapterError | Crash) -> str:
    """An attempt's outcome for /metrics: the journal's, ``unrecognised`` for a reply no reply
    rule knows and ``adapter_crashed`` for an adapter's unexpected error (both journalled as
    unknown_outcome)."""
    if isinstance(result, Crash):
        return "adapter_crashed"
    if isinstance(result, UnrecognisedReply):
        return "unrecognised"
    if isinstance(result, AdapterError):
        return outcome_of(result).value
    return Outcome.DELIVERED.value


def outcome_of(exc: AdapterError) -> Outcome:
    """The journal's outcome of an attempt that failed with ``exc``."""
    if isinstance(exc, PermanentError):
        return Outcome.PERMANENT_ERROR
    if isinstance(exc, UnknownOutcomeError):
        return Outcome.UNKNOWN_OUTCOME
    return Outcome.TRANSIENT_ERROR
