"""What an attempt's end writes to the journal: a delivery (with its receipt), a failure and what
the partner's retry strategy decides, an unconfirmed answer, an end another worker appended.

:class:`Outcomes` is the journal-writing half of a delivery; :class:`~federation.runtime.delivery.Delivery`
extends it with the procedure (map, wait for the breaker, start, send). An attempt's end is
written with the lease held; should another instance have taken the lease meanwhile, the
attempt's own events are appended all the same (``_ended``), for the next holder to act on
(``_settle``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from structlog.typing import FilteringBoundLogger

from adapters.base import Reply
from federation.config import Partner
from federation.domain.errors import (
    AdapterError,
    JournalError,
    LeaseLost,
    MappingError,
    NotSendable,
    UnrecognisedReply,
)
from federation.domain.models import Direction, Event, Exchange, Outcome, State, StateChange
from federation.domain.retry import Decision, Fail, Failure, Reject, RetryLater, RetryNow
from federation.runtime import tracing
from federation.runtime.breaker import PartnerGuards
from federation.runtime.catalogue import Catalogue
from federation.runtime.ends import Crash, End, error_of, outcome_of
from federation.runtime.metrics import Metrics
from federation.runtime.notices import reported
from federation.runtime.supplements import resubmitted
from replay.journal import Journal


@dataclass(kw_only=True)
class Outcomes:
    """Writes the ends of one exchange's attempts for a worker that holds its lease."""

    journal: Journal
    catalogue: Catalogue
    partner: Partner
    guards: PartnerGuards
    owner: str
    lease: float
    log: FilteringBoundLogger
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    scheduled: Callable[[float], None] = lambda _at: None  # told of each retry_wait time
    metrics: Metrics | None = None
    # (attempts, since) that the retry strategy counts from: a replay starts a fresh budget
    _budget: tuple[int, float] = field(default=(0, 0.0), init=False)
    _started_at: float = field(default=0.0, init=False)  # when the attempt in hand was started

    # -- outcomes -------------------------------------------------------------------------------

    async def _delivered(
        self,
        exchange: Exchange,
        number: int,
        duration: float,
        reply: Reply,
        log: FilteringBoundLogger,
    ) -> None:
        finished = self.clock()
        events = [
            self._event(
                exchange,
                "attempt_finished",
                at=finished,
                attempt=number,
                **self._began(),
                outcome=Outcome.DELIVERED.value,
                duration_ms=duration,
                request=dict(reply.transcript.request),
                response=dict(reply.transcript.response or {}),
            )
        ]
        receipt, receipt_error = self._receipt(exchange, reply.body, reply.problem)
        if receipt_error is not None:
            events.append(
                self._event(exchange, "receipt_invalid", at=finished, error=receipt_error)
            )
        await self._resubmitted(exchange, finished)
        # should the lease be lost, the appended end carries the receipt for the next holder
        end = _noting(events[0], receipt=receipt)
        change = self._settled(exchange, receipt, receipt_error)
        await self._ended(exchange, events, change, attempt=[end, *events[1:]])
        log.info("exchange_delivered", duration_ms=duration, status=reply.status)
        if self.metrics is not None:
            self.metrics.delivered(self.partner.id, finished - exchange.created_at)

    async def _resubmitted(self, exchange: Exchange, at: float) -> None:
        """A supplement delivered: its parent application is submitted again."""
        if exchange.supplement_of:
            # The parent first: the partner has the material, so the application is submitted
            # again. Were it second, a stop between the two writes would leave the parent waiting
            # for material forever; this way the supplement, still delivering, is sent again
            # (same key) and finds the parent noted already.
            notify = self._notify(exchange)
            await resubmitted(self.journal, exchange, at, notify=notify, log=self.log)

    def _settled(
        self,
        exchange: Exchange,
        receipt: Mapping[str, Any] | None,
        receipt_error: Mapping[str, Any] | None,
    ) -> StateChange:
        """The journal write of a delivery (its receipt, and the source told)."""
        return StateChange(
            state=State.DELIVERED,
            receipt=receipt or {},
            last_error=receipt_error,
            notify=self._notify(exchange),
            lifecycle_state=None if exchange.supplement_of else "submitted",
        )

    def _receipt(
        self, exchange: Exchange, body: Any, problem: str | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if problem is not None:
            return None, {"kind": "receipt", "message": problem}
        mapping = self.catalogue.mapping(exchange.target, exchange.service)
        if mapping is None:
            return None, None
        try:
            return mapping.map_response(body), None
        except MappingError as exc:
            return None, {
                "kind": "receipt",
                "message": "the partner accepted the application but its reply did not map",
                "problems": [p.to_dict() for p in exc.problems],
            }

    async def _failed(
        self,
        exchange: Exchange,
        number: int,
        duration: float,
        exc: AdapterError,
        log: FilteringBoundLogger,
    ) -> Decision:
        """Record a failed attempt with what the partner's retry strategy decides; returns it."""
        now = self.clock()
        outcome, error, end = self._failure(exchange, number, duration, exc, at=now)
        events = [end]
        decision = self._decide(outcome, exc.retry_after, number, now)
        log = log.bind(outcome=outcome.value, status=exc.status)
        # who said no: the partner, or its contract before anything was sent
        refused = "contract" if isinstance(exc, NotSendable) else "partner"
        change = self._after(exchange, decision, error, now, events, log, refused)
        renew = isinstance(decision, RetryNow)
        # should the lease be lost, the appended end carries the partner's Retry-After
        end = _noting(events[0], retry_after=exc.retry_after)
        await self._ended(exchange, events, change, attempt=[end], renew=renew)
        return decision

    def _failure(
        self,
        exchange: Exchange,
        number: int,
        duration: float,
        exc: AdapterError | Crash,
        *,
        at: float | None = None,
    ) -> tuple[Outcome, dict[str, Any], Event]:
        """A failed attempt's outcome, error and ``attempt_finished`` (with its transcript). A
        reply no reply rule recognises, or an adapter's crash (no transcript), is of unknown
        outcome, its error kind unconfirmed."""
        wire: dict[str, Any] = {}  # the transcript (an adapter that crashed left none)
        if isinstance(exc, Crash):
            outcome, error = Outcome.UNKNOWN_OUTCOME, exc.recorded()
        else:
            unrecognised = isinstance(exc, UnrecognisedReply)
            # whether the partner took the request an unrecognised reply answered is unknown
            outcome = Outcome.UNKNOWN_OUTCOME if unrecognised else outcome_of(exc)
            error = error_of(State.UNCONFIRMED.value if unrecognised else outcome.value, exc)
            response = exc.transcript.response
            wire = {
                "request": dict(exc.transcript.request),
                "response": dict(response) if response else None,
            }
        event = self._event(
            exchange,
            "attempt_finished",
            at=at,
            attempt=number,
            **self._began(),
            outcome=outcome.value,
            duration_ms=duration,
            **wire,
            error=error,
        )
        return outcome, error, event

    async def _delivered_before(
        self,
        exchange: Exchange,
        number: int,
        duration: float,
        exc: AdapterError | Crash,
        earlier: End,
        log: FilteringBoundLogger,
    ) -> None:
        """Attempt ``number`` failed (a repeat's refusal, most likely: the partner has the
        request; or the adapter crashed), but the history now holds an ``earlier`` attempt the
        partner took, appended by the worker that lost the lease to this one: the exchange is
        delivered as then, with that attempt's receipt; this attempt is journalled with its own
        end all the same."""
        _, _, event = self._failure(exchange, number, duration, exc)
        await self._resubmitted(exchange, earlier.at)
        change = self._settled(exchange, earlier.receipt, earlier.receipt_error)
        await self._ended(exchange, [event], change)
        log.info("exchange_delivered", settled_by=earlier.number, ended_by=earlier.owner)
        if self.metrics is not None:
            self.metrics.delivered(self.partner.id, earlier.at - exchange.created_at)

    async def _refused_unsure(
        self,
        exchange: Exchange,
        number: int,
        duration: float,
        exc: AdapterError,
        log: FilteringBoundLogger,
    ) -> None:
        """The partner refused attempt ``number`` while an earlier attempt, taken over from
        another instance mid-flight, has no end of its own yet: the refusal cannot be told from
        the partner's refusal of a duplicate of a request it took, so the exchange ends
        unconfirmed (never rejected: the partner's yes may be on its way), for support staff."""
        _, _, event = self._failure(exchange, number, duration, exc)
        error = error_of(State.UNCONFIRMED.value, exc)
        error["message"] = (
            f"{exc.message}; an earlier attempt taken over from another instance has no end in "
            "the journal: the partner may have taken it and refused this one as a duplicate"
        )
        notify = self._notify(exchange)
        change = StateChange(state=State.UNCONFIRMED, last_error=error, notify=notify)
        await self._ended(exchange, [event], change)
        log.warning("exchange_unconfirmed", status=exc.status, reason="refused_after_takeover")

    def _decide(
        self, outcome: Outcome, retry_after: float | None, number: int, now: float
    ) -> Decision:
        """What the partner's retry strategy says after attempt ``number`` ended in ``outcome``."""
        breaker = self.guards.breaker
        failure = Failure(
            permanent=outcome is Outcome.PERMANENT_ERROR,
            retry_after=retry_after,
            held_for=None if breaker.closed else breaker.reopens_in(),
        )
        attempts, since = self._budget
        return self.partner.retry.strategy().decide(
            failure, number - attempts, now - since, self.rng
        )

    async def _unconfirmed(
        self,
        exchange: Exchange,
        number: int,
        duration: float,
        exc: UnrecognisedReply,
        log: FilteringBoundLogger,
    ) -> None:
        """The partner answered in no way its reply rules recognise: the exchange ends unconfirmed,
        with the reply in the attempt, for support staff to look at and replay."""
        _, error, event = self._failure(exchange, number, duration, exc)
        change = StateChange(
            state=State.UNCONFIRMED, last_error=error, notify=self._notify(exchange)
        )
        await self._ended(exchange, [event], change)
        log.warning("exchange_unconfirmed", status=exc.status)

    async def _crashed(
        self,
        exchange: Exchange,
        number: int,
        duration: float,
        crash: Crash,
        log: FilteringBoundLogger,
    ) -> None:
        """The adapter failed with an error of ours (its bug, or a library's inside it): the
        request may have reached the partner before it, so the attempt's outcome is unknown and
        the exchange ends unconfirmed (not rejected: the partner refused nothing; not retried:
        the same bug would answer again), for support staff to replay once it is fixed (the
        crash itself is logged where it happened, as adapter_crashed)."""
        _, error, event = self._failure(exchange, number, duration, crash)
        change = StateChange(
            state=State.UNCONFIRMED, last_error=error, notify=self._notify(exchange)
        )
        await self._ended(exchange, [event], change)
        log.warning("exchange_unconfirmed", reason="adapter_crashed")

    async def _settle(self, exchange: Exchange, end: End) -> Decision | None:
        """Act on the end of the attempt in hand that the history holds and the row does not
        show (its worker lost the lease before writing it): write what that worker would have,
        without sending again. Returns what comes next (None: the exchange has ended)."""
        log = self.log.bind(attempt=end.number, outcome=end.outcome.value, ended_by=end.owner)
        if end.outcome is Outcome.DELIVERED:
            # the partner said yes: delivered as then, with the receipt its reply mapped to
            await self._resubmitted(exchange, end.at)
            await self._record(
                exchange, [], self._settled(exchange, end.receipt, end.receipt_error)
            )
            log.info("exchange_delivered")
            if self.metrics is not None:
                self.metrics.delivered(self.partner.id, end.at - exchange.created_at)
            return None
        error = dict(end.error or {"kind": end.outcome.value})
        if end.unconfirmed:
            notify = self._notify(exchange)
            change = StateChange(state=State.UNCONFIRMED, last_error=error, notify=notify)
            await self._record(exchange, [], change)
            log.warning("exchange_unconfirmed")
            return None
        now = self.clock()
        decision = self._decide(end.outcome, end.retry_after, end.number, now)
        events: list[Event] = []
        refused = "partner" if end.sent else "contract"
        change = self._after(exchange, decision, error, now, events, log, refused)
        await self._record(exchange, events, change, renew=isinstance(decision, RetryNow))
        return decision

    def _after(
        self,
        exchange: Exchange,
        decision: Decision,
        error: dict[str, Any],
        now: float,
        events: list[Event],
        log: FilteringBoundLogger,
        refused: str,
    ) -> StateChange:
        """The journal write that carries out ``decision`` (and its log line; ``refused``: who
        refused a rejected request, ``partner`` or ``contract``)."""
        if isinstance(decision, Reject):
            log.warning("exchange_rejected", reason=refused)
            return StateChange(
                state=State.REJECTED, last_error=error, notify=self._notify(exchange)
            )
        if isinstance(decision, Fail):
            events.append(
                self._event(exchange, "retries_exhausted", at=now, attempts=exchange.attempts)
            )
            log.warning("exchange_failed")
            return StateChange(state=State.FAILED, last_error=error, notify=self._notify(exchange))
        if isinstance(decision, RetryNow):
            log.info("exchange_retry_now")
            return StateChange(state=State.DELIVERING, last_error=error)
        assert isinstance(decision, RetryLater)
        at = now + decision.after
        self.scheduled(at)
        log.info("exchange_retry_scheduled", delay_s=round(decision.after, 3))
        return StateChange(
            state=State.RETRY_WAIT, last_error=error, next_attempt_at=at, release_lease=True
        )

    def _notify(self, exchange: Exchange) -> bool:
        """Does the exchange's originator want to hear how it ended?"""
        inbound = exchange.direction is Direction.INBOUND
        callback = self.catalogue.config.callback_url(exchange.source, inbound=inbound)
        return callback is not None or reported(self.catalogue, exchange)  # or a notice

    # -- journal helpers ------------------------------------------------------------------------

    def _began(self) -> dict[str, Any]:
        """When and by whom the attempt in hand was started (its ``attempt_finished`` says)."""
        return {"started_at": self._started_at, "owner": self.owner}

    def _event(
        self, exchange: Exchange, kind: str, *, at: float | None = None, **data: Any
    ) -> Event:
        return Event(
            exchange_id=exchange.id, kind=kind, at=self.clock() if at is None else at, data=data
        )

    async def _ended(
        self,
        exchange: Exchange,
        events: list[Event],
        change: StateChange,
        *,
        attempt: list[Event] | None = None,
        renew: bool = False,
    ) -> None:
        """Record an attempt's end. Should another instance have taken the lease meanwhile (this
        one stalled), the attempt's own events (``attempt``, default all: its end, transcript,
        receipt) are appended all the same, the row left to that instance, and LeaseLost raised:
        the journal holds every attempt, and the worker gives the exchange up. The appended end
        carries what the next holder needs to act on it (the mapped receipt, the Retry-After)."""
        try:
            await self._record(exchange, events, change, renew=renew)
        except LeaseLost:
            kept = events if attempt is None else attempt
            try:
                await self.journal.append(exchange.id, kept)
            except JournalError as exc:
                kinds = [e.kind for e in kept]
                self.log.error("attempt_unjournalled", error=str(exc), events=kinds)
            raise

    async def _record(
        self, exchange: Exchange, events: list[Event], change: StateChange, *, renew: bool = False
    ) -> None:
        with tracing.span("journal.write", parent=exchange.traceparent, events=len(events)):
            await self.journal.record(
                exchange.id,
                events,
                change,
                owner=self.owner,
                lease_until=self.clock() + self.lease if renew else None,
            )


def _noting(event: Event, **extra: Any) -> Event:
    """``event`` with the ``extra`` data that is not None."""
    noted = {k: v for k, v in extra.items() if v is not None}
    return replace(event, data={**event.data, **noted}) if noted else event
