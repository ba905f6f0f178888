"""Delivering one exchange: map it, then attempt until delivered, refused, or handed to the journal.

The procedure for one exchange, given the worker's per-partner guards:

1. map the application (once, :func:`~federation.runtime.mapping.map_exchange`; a failed mapping
   rejects the exchange);
2. wait while the partner's circuit breaker is open (holding the lease, spending no attempt);
3. take a rate-limit token, write the attempt's start (with the mapping, if new) to the journal;
4. send, holding a concurrency slot only while the request is on the wire;
5. record the outcome and what the partner's retry strategy decides: delivered, rejected
   (permanent), retried in process (a blip), scheduled in the journal (``retry_wait``, survives
   restarts), or failed (strategy spent); a reply the partner's reply rules do not recognise
   ends the exchange ``unconfirmed`` (never delivered, never retried by itself).

An exchange taken over whose attempt in hand already has its end in the history (appended by a
worker that lost the lease: :mod:`federation.runtime.ends`) is settled by that end, not sent again.

Classification lives in the adapters (see docs/delivery.md); here transient vs permanent vs
unrecognised is all that matters, plus Retry-After and whether the request may have reached the
partner.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from structlog.typing import FilteringBoundLogger

from adapters.base import Adapter, OutboundRequest, Reply
from federation.config import Partner
from federation.domain.errors import (
    AdapterError,
    JournalError,
    LeaseLost,
    MappingError,
    NotSendable,
    NotSent,
    TransientError,
    UnrecognisedReply,
)
from federation.domain.models import Direction, Event, Exchange, Outcome, State, StateChange
from federation.domain.retry import Decision, Fail, Failure, Reject, RetryLater, RetryNow
from federation.runtime import tracing
from federation.runtime.breaker import PartnerGuards, Sleep
from federation.runtime.catalogue import Catalogue
from federation.runtime.ends import End, error_of, outcome_label, outcome_of, unsettled_end
from federation.runtime.mapping import MappingFailed, map_exchange
from federation.runtime.metrics import Metrics
from federation.runtime.notices import reported
from federation.runtime.supplements import resubmitted
from replay.journal import Journal


@dataclass(frozen=True)
class _Sent:
    """What one send came back with, and how long it took (ms)."""

    result: Reply | AdapterError
    duration: float


@dataclass
class Delivery:
    """Delivers one exchange for a worker that holds its lease."""

    journal: Journal
    catalogue: Catalogue
    adapter: Adapter
    partner: Partner
    guards: PartnerGuards
    owner: str
    lease: float
    log: FilteringBoundLogger
    clock: Callable[[], float] = time.time
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    scheduled: Callable[[float], None] = lambda _at: None  # told of each retry_wait time
    metrics: Metrics | None = None
    _exchange: Exchange | None = field(default=None, init=False)
    # (attempts, since) that the retry strategy counts from: a replay starts a fresh budget
    _budget: tuple[int, float] = field(default=(0, 0.0), init=False)
    _interrupted: bool = field(default=False, init=False)  # claimed mid-attempt from a dead worker
    _started_at: float = field(default=0.0, init=False)  # when the attempt in hand was started
    _key: str = field(default="", init=False)  # the idempotency key the partner is sent

    async def run(self, exchange: Exchange) -> None:
        """Map if needed, then attempt until the strategy says anything but 'retry now'."""
        pending: list[Event] = []
        self._key = exchange.sent_key()
        if exchange.state is State.RECEIVED:
            mapped = await self._map(exchange)
            if mapped is None:
                return
            exchange, event = mapped
            pending.append(event)
        if exchange.mapped is None:
            self.log.error("exchange_undeliverable", reason="no mapped request in the journal")
            return
        self._exchange = exchange
        self._budget = (0, exchange.created_at)
        for event in exchange.events:
            if event.kind == "replayed":
                self._budget = (int(event.data.get("attempts_before", 0)), event.at)
        # an attempt already ended (its worker appended the end after losing the lease, or it
        # stopped after a retry-now's write) is not presumed to have an unknown outcome: its end
        # is acted on, as its worker would have, before anything is sent again
        end = unsettled_end(exchange)
        in_hand = exchange.state is State.DELIVERING and exchange.attempts > 0
        self._interrupted = in_hand and end is None
        if end is not None:
            decision = await self._settle(exchange, end)
            if not isinstance(decision, RetryNow):
                return
            await self.sleep(decision.after)
        while isinstance(decision := await self._attempt(pending), RetryNow):
            await self.sleep(decision.after)

    # -- mapping --------------------------------------------------------------------------------

    async def _map(self, exchange: Exchange) -> tuple[Exchange, Event] | None:
        """Map the application; the ``mapped`` event is returned to be written with the attempt.

        A failed mapping is recorded here (the exchange is rejected) and gives None.
        """
        with tracing.span(
            "mapping",
            parent=exchange.traceparent,
            partner=exchange.target,
            service=exchange.service,
        ):
            result = map_exchange(self.catalogue, exchange)
        if isinstance(result, MappingFailed):
            await self._unmapped(exchange, result)
            return None
        # the key goes with the (first) mapping: sent with it from now on, kept by a remap
        event = self._event(exchange, "mapped", **result.event_data(), key=exchange.sent_key())
        return exchange.evolved(mapped=result.request, mapping_versions=result.versions), event

    async def _unmapped(self, exchange: Exchange, failed: MappingFailed) -> None:
        error = failed.error()
        change = StateChange(state=State.REJECTED, last_error=error, notify=self._notify(exchange))
        if failed.kind == "not_configured":
            self.log.warning("exchange_rejected", reason="not_configured")
            event = self._event(exchange, "rejected", error=error)
        else:
            self.log.warning("exchange_rejected", reason=failed.kind, problems=len(failed.problems))
            event = self._event(exchange, "mapping_failed", error=error, versions=failed.versions)
            change = replace(change, mapping_versions=failed.versions)
        await self._record(exchange, [event], change)

    # -- one attempt ----------------------------------------------------------------------------

    async def _attempt(self, pending: list[Event]) -> Decision | None:
        """One attempt, admitted by the breaker; what comes next (None: delivered)."""
        exchange = self._exchange
        assert exchange is not None  # set by run()
        with tracing.span(
            "attempt", parent=exchange.traceparent, partner=exchange.target, exchange=exchange.id
        ):
            return await self._traced_attempt(pending)

    async def _traced_attempt(self, pending: list[Event]) -> Decision | None:
        guards = self.guards

        async def held() -> None:
            await self._held(pending)

        async with guards.breaker.admit(held):
            if guards.rate is not None:
                await guards.rate.acquire()
            request = await self._start(pending)
            sent = await self._send(request)
        exchange = self._exchange
        assert exchange is not None  # set by run()
        if self.metrics is not None:
            self.metrics.attempted(self.partner.id, outcome_label(sent.result), sent.duration / 1e3)
        log = self.log.bind(attempt=request.attempt)
        if isinstance(sent.result, UnrecognisedReply):
            await self._unconfirmed(exchange, request.attempt, sent.duration, sent.result, log)
            return None
        if isinstance(sent.result, AdapterError):
            return await self._failed(exchange, request.attempt, sent.duration, sent.result, log)
        await self._delivered(exchange, request.attempt, sent.duration, sent.result, log)
        return None

    async def _held(self, pending: list[Event]) -> None:
        """The breaker is open: make a new mapping durable and the exchange visibly queued."""
        exchange = self._exchange
        assert exchange is not None
        if pending:
            await self._record(
                exchange,
                [*pending, self._event(exchange, "held", reason="circuit breaker open")],
                StateChange(state=State.QUEUED, mapping_versions=exchange.mapping_versions),
                renew=True,
            )
            pending.clear()
            self._exchange = replace(exchange, state=State.QUEUED)
        self.log.info("exchange_held", reason="breaker_open")

    async def _start(self, pending: list[Event]) -> OutboundRequest:
        """Write the attempt's start (with the mapping, if new); the request to send."""
        exchange = self._exchange
        assert exchange is not None
        number = exchange.attempts + 1
        started = self.clock()
        events = list(pending)
        if self._interrupted:
            # Whether the partner got the dead worker's attempt is unknown. It started when the
            # row last changed (its start was the last write of the worker that held it).
            events.append(
                self._event(
                    exchange,
                    "attempt_finished",
                    at=started,
                    attempt=exchange.attempts,
                    started_at=exchange.updated_at,
                    outcome=Outcome.UNKNOWN_OUTCOME.value,
                    error={
                        "kind": Outcome.UNKNOWN_OUTCOME.value,
                        "message": "the worker holding this attempt stopped before recording its end",
                    },
                )
            )
        # The start itself is the row's move to delivering (attempts, time, lease owner) in this
        # write, made before sending; the attempt's event is written when it ends, with its start.
        self._started_at = started
        versions = exchange.mapping_versions if pending else None
        change = StateChange(state=State.DELIVERING, attempts=number, mapping_versions=versions)
        await self._record(exchange, events, change, renew=True)
        pending.clear()  # written: an in-process retry must not write the mapping again
        self._interrupted = False
        exchange = self._exchange = exchange.evolved(state=State.DELIVERING, attempts=number)
        return OutboundRequest(
            exchange_id=exchange.id,
            idempotency_key=self._key,
            service=exchange.service,
            payload=exchange.mapped or {},
            attempt=number,
            kind="supplement" if exchange.supplement_of else "application",
            traceparent=tracing.outgoing(exchange.traceparent),
        )

    async def _send(self, request: OutboundRequest) -> _Sent:
        """Send in a concurrency slot and tell the breaker what it says about the partner."""
        result: Reply | AdapterError
        async with self.guards.slots:
            t0 = time.perf_counter()
            try:
                result = await self.adapter.send(request)
            except AdapterError as exc:
                result = exc
            duration = round((time.perf_counter() - t0) * 1000, 3)
        if isinstance(result, NotSent):
            # ours to fix (a secret that cannot be read): the partner was not asked, so its
            # breaker and latencies hear nothing; the journal's error and this line say why
            self.log.warning("attempt_not_sent", attempt=request.attempt, error=result.message)
            return _Sent(result, duration)
        if isinstance(result, NotSendable):
            return _Sent(result, duration)  # refused before sending: the partner was not asked
        self.guards.latencies.append(duration)
        if isinstance(result, TransientError):
            self.guards.breaker.failure()
        else:
            self.guards.breaker.success()  # an answer, even a refusal: the partner is up
        return _Sent(result, duration)

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
        outcome = outcome_of(exc)
        error = error_of(outcome.value, exc)
        events = [
            self._event(
                exchange,
                "attempt_finished",
                at=now,
                attempt=number,
                **self._began(),
                outcome=outcome.value,
                duration_ms=duration,
                request=dict(exc.transcript.request),
                response=dict(exc.transcript.response) if exc.transcript.response else None,
                error=error,
            )
        ]
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
        error = error_of(State.UNCONFIRMED.value, exc)
        event = self._event(
            exchange,
            "attempt_finished",
            attempt=number,
            **self._began(),
            # the attempt's outcome: whether the partner took the request is unknown
            outcome=Outcome.UNKNOWN_OUTCOME.value,
            duration_ms=duration,
            request=dict(exc.transcript.request),
            response=dict(exc.transcript.response) if exc.transcript.response else None,
            error=error,
        )
        change = StateChange(
            state=State.UNCONFIRMED, last_error=error, notify=self._notify(exchange)
        )
        await self._ended(exchange, [event], change)
        log.warning("exchange_unconfirmed", status=exc.status)

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


def standing_errors(
    exchange: Exchange,
) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """The exchange's last error as it stands, and the one a later delivery superseded.

    The journal keeps ``last_error`` when an exchange is delivered after failures (so support
    staff still find it); once delivered, it is the previous error unless it is about the
    delivery itself (a receipt that did not map, written with that delivery).
    """
    error = exchange.last_error
    if exchange.state is not State.DELIVERED or error is None:
        return error, None
    if not exchange.events:
        return (error, None) if error.get("kind") == "receipt" else (None, error)
    for event in reversed(exchange.events):
        if event.kind == "receipt_invalid":
            return error, None
        if event.kind == "attempt_finished" and event.data.get("outcome") == "delivered":
            break
    return None, error
