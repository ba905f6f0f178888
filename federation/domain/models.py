"""Values that travel through the broker: exchanges, their events and attempts.

An *exchange* is one application on its way to one party for one service item. The model is
symmetric: ``direction`` says whether the application leaves for a partner (``outbound``) or
arrives from one for the local system (``inbound``); ``source`` and ``target`` are party ids either way.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson


class Direction(enum.StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class State(enum.StrEnum):
    RECEIVED = "received"  # journalled, not yet mapped
    QUEUED = "queued"  # mapped, waiting for a delivery slot
    DELIVERING = "delivering"  # an attempt is in flight
    DELIVERED = "delivered"  # the partner acknowledged it
    RETRY_WAIT = "retry_wait"  # a transient failure; next_attempt_at says when
    FAILED = "failed"  # retries exhausted (dead letter)
    REJECTED = "rejected"  # permanent: mapping failed or the partner refused it
    # the partner answered, but in no way its reply rules recognise as yes or no: whether it
    # took the application is unknown, so it is not counted as delivered; support staff look
    # at the reply and replay it (or settle it with the partner)
    UNCONFIRMED = "unconfirmed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({State.DELIVERED, State.FAILED, State.REJECTED, State.UNCONFIRMED})

# The only moves the broker makes; the journal refuses anything else.
TRANSITIONS: Mapping[State, frozenset[State]] = {
    # received → delivering: mapped and sent at once, the mapped event written with the attempt.
    State.RECEIVED: frozenset({State.QUEUED, State.DELIVERING, State.REJECTED}),
    State.QUEUED: frozenset({State.DELIVERING}),
    State.DELIVERING: frozenset(
        {
            State.DELIVERED,
            State.RETRY_WAIT,
            State.FAILED,
            State.REJECTED,
            State.UNCONFIRMED,
            State.QUEUED,
        }
    ),
    State.RETRY_WAIT: frozenset({State.DELIVERING, State.QUEUED}),
    # Ended exchanges move again only by a replay (an appended 'replayed' event says who and why):
    # queued to resend the same mapped request, received to map the application anew.
    State.DELIVERED: frozenset({State.QUEUED, State.RECEIVED}),
    State.FAILED: frozenset({State.QUEUED, State.RECEIVED}),
    State.REJECTED: frozenset({State.QUEUED, State.RECEIVED}),
    State.UNCONFIRMED: frozenset({State.QUEUED, State.RECEIVED}),
}


class Lifecycle(enum.StrEnum):
    """Where a delivered application stands at the handling side (Administrative Licensing Law)."""

    SUBMITTED = "submitted"
    ACCEPTED = "accepted"  # 受理
    NOT_ACCEPTED = "not_accepted"  # 不予受理
    CORRECTION_REQUIRED = "correction_required"  # 补正: all gaps at once
    REVIEW = "review"  # 审查
    APPROVED = "approved"  # 准予许可
    REFUSED = "refused"  # 不予许可
    COMPLETED = "completed"  # 办结
    SERVED = "served"  # 送达: the decision handed to the applicant


_L = Lifecycle
# What may follow each step (Administrative Licensing Law art. 32 ff.: submitted → accepted | not
# accepted | correction required → review → approved | refused → completed → served). Steps may be
# skipped (a partner polled every ten minutes can go from accepted to completed between two
# questions); nothing goes back, except that a correction round returns the application to
# submitted. A partner saying the same thing twice is no step at all.
LIFECYCLE_NEXT: dict[str, frozenset[str]] = {
    state.value: frozenset(s.value for s in following)
    for state, following in {
        _L.SUBMITTED: (
            _L.ACCEPTED,
            _L.NOT_ACCEPTED,
            _L.CORRECTION_REQUIRED,
            _L.REVIEW,
            _L.APPROVED,
            _L.REFUSED,
            _L.COMPLETED,
        ),
        _L.ACCEPTED: (_L.CORRECTION_REQUIRED, _L.REVIEW, _L.APPROVED, _L.REFUSED, _L.COMPLETED),
        _L.CORRECTION_REQUIRED: (
            _L.SUBMITTED,
            _L.ACCEPTED,
            _L.NOT_ACCEPTED,
            _L.REVIEW,
            _L.APPROVED,
            _L.REFUSED,
            _L.COMPLETED,
        ),
        _L.REVIEW: (_L.CORRECTION_REQUIRED, _L.APPROVED, _L.REFUSED, _L.COMPLETED),
        _L.APPROVED: (_L.COMPLETED, _L.SERVED),
        _L.REFUSED: (_L.COMPLETED, _L.SERVED),
        _L.NOT_ACCEPTED: (_L.COMPLETED, _L.SERVED),  # 不予受理 is decided; 办结 may be said too
        _L.COMPLETED: (_L.SERVED,),
        _L.SERVED: (),
    }.items()
}
# Nothing more to ask a partner about (polling stops; a later ``served`` may still be reported).
LIFECYCLE_FINAL = frozenset({_L.COMPLETED.value, _L.NOT_ACCEPTED.value, _L.SERVED.value})


class Outcome(enum.StrEnum):
    """How one delivery attempt ended."""

    DELIVERED = "delivered"
    TRANSIENT_ERROR = "transient_error"
    UNKNOWN_OUTCOME = "unknown_outcome"
    PERMANENT_ERROR = "permanent_error"


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, UTF-8) for hashing, storage and partners.

    Money travels as exact decimal text (``Decimal("1000.00")`` → ``"1000.00"``), never as a float.
    """
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=json_default)


def json_default(value: Any) -> Any:
    """What orjson cannot write by itself: Decimals as their exact text, sets as lists."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def content_hash(data: bytes) -> str:
    """``sha256:`` + hex digest: the form every recorded version and request hash takes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def iso(ts: float | None) -> str | None:
    """Epoch seconds → RFC 3339 UTC with milliseconds (``None`` stays ``None``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True)
class Event:
    """One append-only journal record of something that happened to an exchange."""

    exchange_id: str
    kind: str
    at: float
    data: Mapping[str, Any] = field(default_factory=dict)
    seq: int | None = None  # assigned by the journal


@dataclass(frozen=True, kw_only=True)
class NewExchange:
    """An application as accepted at intake, before the journal gives it a state."""

    id: str
    direction: Direction
    source: str
    target: str
    service: str
    idempotency_key: str
    request_hash: str
    application: Mapping[str, Any]
    received_at: float
    applicant_refs: tuple[bytes, ...] = ()  # keyed hashes of applicant IDs, for search
    supplement_of: str | None = None  # a correction round's material for this exchange (补正)
    traceparent: str | None = None  # W3C trace context of the intake, continued by deliveries

    def received_data(self) -> dict[str, Any]:
        """What the journal's ``received`` event keeps of the application."""
        data: dict[str, Any] = {"application": self.application, "request_hash": self.request_hash}
        if self.supplement_of:
            data["supplement_of"] = self.supplement_of
        if self.traceparent:
            data["traceparent"] = self.traceparent
        return data

    def as_received(self) -> Exchange:
        """The exchange as the journal holds it right after ``create``."""
        return Exchange(
            id=self.id,
            direction=self.direction,
            source=self.source,
            target=self.target,
            service=self.service,
            idempotency_key=self.idempotency_key,
            request_hash=self.request_hash,
            state=State.RECEIVED,
            application=self.application,
            created_at=self.received_at,
            updated_at=self.received_at,
            supplement_of=self.supplement_of,
            traceparent=self.traceparent,
        )


@dataclass(frozen=True, kw_only=True)
class StateChange:
    """The current-state columns one journal write sets, together with its events."""

    state: State
    expect: frozenset[State] | None = (
        None  # refuse the write unless the exchange is in one of these
    )
    mapped: Mapping[str, Any] | None = None
    mapping_versions: Mapping[str, str] | None = None
    receipt: Mapping[str, Any] | None = None
    last_error: Mapping[str, Any] | None = None
    attempts: int | None = None
    next_attempt_at: float | None = None
    release_lease: bool = False
    notify: bool = False  # announce this (end) state to the source's callback
    notify_as: str | None = None  # …as this instead (e.g. "lifecycle:accepted")
    lifecycle_state: str | None = None  # the partner's latest word on the application
    # refuse the write unless the latest word is still this one (a lifecycle step is checked
    # against the step before it; another update may have got there first)
    expect_lifecycle: str | None = None
    # refuse the write unless the exchange has taken exactly this many lifecycle steps (its
    # ``lifecycle_steps`` as read): a step to the same state (a new correction round) leaves the
    # latest word as it was, so only the count tells that one was written meanwhile
    expect_steps: int | None = None
    # refuse the write unless no callback or notice is pending (a resend must not write over a
    # step's callback armed since it looked, nor take the notifier's lease on one)
    expect_quiet: bool = False


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One delivery attempt as reconstructed from its two events."""

    number: int
    started_at: float
    finished_at: float | None
    outcome: Outcome | None
    duration_ms: float | None
    request: Mapping[str, Any]
    response: Mapping[str, Any] | None
    error: Mapping[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "outcome": self.outcome.value if self.outcome else "in_flight",
            "duration_ms": self.duration_ms,
            "request": dict(self.request),
            "response": dict(self.response) if self.response is not None else None,
            "error": dict(self.error) if self.error is not None else None,
        }


@dataclass(frozen=True, kw_only=True)
class Exchange:
    """An exchange's current state, with its event history when loaded in full."""

    id: str
    direction: Direction
    source: str
    target: str
    service: str
    idempotency_key: str
    request_hash: str
    state: State
    application: Mapping[str, Any]
    mapped: Mapping[str, Any] | None = None
    mapping_versions: Mapping[str, str] = field(default_factory=dict)
    receipt: Mapping[str, Any] | None = None
    last_error: Mapping[str, Any] | None = None
    attempts: int = 0
    next_attempt_at: float | None = None
    notify_state: str | None = None  # end state still to be announced to the source's callback
    notify_attempts: int = 0
    supplement_of: str | None = None  # set on a correction round's follow-up message
    traceparent: str | None = None  # W3C trace context kept from intake (in history reads)
    lifecycle_state: str | None = None  # the latest lifecycle step (search by it)
    # the lifecycle steps written (each write that sets lifecycle_state), counted since the
    # journal kept the count: bookkeeping for StateChange.expect_steps, not shown
    lifecycle_steps: int = 0
    created_at: float
    updated_at: float
    events: Sequence[Event] = ()

    def evolved(self, **changes: Any) -> Exchange:
        """This exchange with ``changes``: ``dataclasses.replace`` without calling ``__init__``
        (the class has no ``__post_init__`` and no field is computed), 0.5 µs against 5 for its
        23 fields, twice per delivery. A name that is no field is refused as ``replace`` does."""
        unknown = changes.keys() - self.__dataclass_fields__.keys()
        if unknown:
            raise TypeError(f"Exchange has no field {sorted(unknown)[0]!r}")
        new = object.__new__(Exchange)
        state = new.__dict__
        state.update(self.__dict__)
        state.update(changes)
        return new

    def lifecycle(self) -> list[dict[str, Any]]:
        """Where the application stands at the handling side, step by step, with timestamps.

        Submitted once per sending (the first delivered attempt, and again after a replay): two
        instances may both have delivered it, one of them after another took its lease (its
        attempt appended late, same key), and the partner had it from the first.
        """
        steps: list[dict[str, Any]] = []
        submitted = False
        for event in self.events:
            if event.kind == "replayed":
                submitted = False
            elif event.kind == "attempt_finished" and event.data.get("outcome") == "delivered":
                if not submitted:
                    steps.append({"state": Lifecycle.SUBMITTED.value, "at": iso(event.at)})
                submitted = True
            elif event.kind == "lifecycle":
                step = {"state": event.data.get("lifecycle"), "at": iso(event.at)}
                step.update({k: event.data[k] for k in ("note", "supplement") if k in event.data})
                steps.append(step)
        return steps

    def sent_key(self) -> str:
        """The idempotency key the target is sent this exchange with, on every attempt and replay.

        The exchange id: a source's key names the application only among that source's own, and
        a partner that deduplicates on the key would take a second source's application reusing it
        for a repeat of the first. An exchange mapped before this rule keeps the source's key it
        may already have been sent with (its first ``mapped`` event names no ``key``). Reads the
        events: give it an exchange loaded with its history.
        """
        for event in self.events:
            if event.kind == "mapped":
                return str(event.data.get("key") or self.idempotency_key)
        return self.id

    def original(self, *, sent: bool = False) -> dict[str, Any]:
        """How a follow-up names this application: ``original.*`` in a mapping's status_query:
        and supplement: sections (the exchange id, the key, and the partner's receipt, which
        carries its case number). ``sent``: the key the target was sent (a follow-up to it, from
        an exchange loaded with its history); otherwise the source's own (a notice to it)."""
        return {
            "exchange_id": self.id,
            "idempotency_key": self.sent_key() if sent else self.idempotency_key,
            "receipt": dict(self.receipt or {}),
        }

    def attempt_history(self) -> list[Attempt]:
        """The attempts: each ``attempt_finished`` event says when its attempt started (journals
        written before that paired it with an ``attempt_started`` event); an attempt on the wire
        now is the row's (delivering, with the attempt count and the time of its start)."""
        started: dict[int, tuple[float, Mapping[str, Any]]] = {}
        finished: dict[int, Event] = {}
        for ev in self.events:
            if ev.kind == "attempt_started":
                started[int(ev.data["attempt"])] = (ev.at, ev.data.get("request", {}))
            elif ev.kind == "attempt_finished":
                number = int(ev.data["attempt"])
                if number in finished and "duration_ms" not in ev.data:
                    # an end the next holder presumed (unknown, untimed) after the attempt's own
                    # worker appended the real one, its lease lost meanwhile: the real one stands
                    continue
                finished[number] = ev
                if "started_at" in ev.data:
                    started.setdefault(number, (float(ev.data["started_at"]), {}))
        if self.state is State.DELIVERING and self.attempts and self.attempts not in finished:
            started.setdefault(self.attempts, (self.updated_at, {}))
        out = []
        for number in sorted(started):
            (at, planned), f = started[number], finished.get(number)
            out.append(
                Attempt(
                    number=number,
                    started_at=at,
                    finished_at=f.at if f else None,
                    outcome=Outcome(f.data["outcome"]) if f else None,
                    duration_ms=f.data.get("duration_ms") if f else None,
                    request=(f.data.get("request") if f else None) or planned,
                    response=f.data.get("response") if f else None,
                    error=f.data.get("error") if f else None,
                )
            )
        return out
