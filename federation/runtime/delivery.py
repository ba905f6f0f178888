"""Delivering one exchange: map it, then attempt until delivered, refused, or handed to the journal.

The procedure for one exchange, given the worker's per-partner guards:

1. map the application (once; a failed mapping rejects the exchange);
2. wait while the partner's circuit breaker is open (holding the lease, spending no attempt);
3. take a rate-limit token, write the attempt's start (with the mapping, if new) to the journal;
4. send, holding a concurrency slot only while the request is on the wire;
5. record the outcome: delivered, rejected (permanent), retried in process (tenacity, for blips),
   scheduled in the journal (``retry_wait``, survives restarts), or failed (policy exhausted).

Classification lives in the adapters (see docs/delivery.md); here transient vs permanent is all
that matters, plus Retry-After and whether the request may have reached the partner.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import tenacity

from adapters.base import Adapter, OutboundRequest, Reply
from federation.config import Partner
from federation.domain.errors import (
    AdapterError,
    JournalError,
    LifecycleMoved,
    MappingError,
    PermanentError,
    Problem,
    UnknownOutcomeError,
)
from federation.domain.models import Direction, Event, Exchange, Outcome, State, StateChange
from federation.runtime.breaker import CircuitBreaker, RateLimit
from federation.runtime.catalogue import Catalogue
from replay.journal import Journal

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class PartnerGuards:
    """What protects one partner inside this instance: breaker, rate limit, concurrency slots."""

    breaker: CircuitBreaker
    slots: asyncio.Semaphore
    rate: RateLimit | None = None
    waiting: int = 0  # exchanges held by the open breaker

    @classmethod
    def for_partner(cls, partner: Partner) -> PartnerGuards:
        rate = partner.rate_limit
        return cls(
            breaker=CircuitBreaker(partner.id, partner.breaker),
            slots=asyncio.Semaphore(partner.concurrency),
            rate=RateLimit(rate.per_second, rate.burst) if rate else None,
        )


class _AgainNow(Exception):
    """Raised inside the tenacity loop: retry this attempt in process."""


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
    log: Any
    clock: Callable[[], float] = time.time
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    scheduled: Callable[[float], None] = lambda _at: None  # told of each retry_wait time
    _exchange: Exchange | None = field(default=None, init=False)
    _budget: tuple[int, float] = field(
        default=(0, 0.0), init=False
    )  # (attempts, since) of this run

    def _lease_until(self) -> float:
        return self.clock() + self.lease

    async def run(self, exchange: Exchange) -> None:
        pending: list[Event] = []
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
        # A replay starts a fresh retry budget: count attempts and time from the latest one.
        self._budget = (0, exchange.created_at)
        for event in exchange.events:
            if event.kind == "replayed":
                self._budget = (int(event.data.get("attempts_before", 0)), event.at)
        try:
            await self._attempt(pending, 1)
            return
        except _AgainNow:
            pass  # a blip: retry in process (tenacity only now: it costs on every use)
        policy = self.partner.retry
        base = policy.short_backoff
        await self.sleep(base + self.rng.uniform(0, base * policy.jitter))
        retrying = tenacity.AsyncRetrying(
            # An explicit stop, although _attempt stops raising _AgainNow after short_attempts.
            stop=tenacity.stop_after_attempt(policy.short_attempts - 1),
            wait=tenacity.wait_exponential(multiplier=base * 2, max=base * 8)
            + tenacity.wait_random(0, base * policy.jitter),
            retry=tenacity.retry_if_exception_type(_AgainNow),
            sleep=self.sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._attempt([], attempt.retry_state.attempt_number + 1)

    # -- mapping --------------------------------------------------------------------------------

    async def _map(self, exchange: Exchange) -> tuple[Exchange, Event] | None:
        """Map the application; the ``mapped`` event is returned to be written with the attempt.

        A failed mapping is recorded here (the exchange is rejected) and gives None.
        """
        mapping = self.catalogue.mapping(exchange.target, exchange.service)
        now = self.clock()
        error: dict[str, Any]
        if mapping is None:
            error = {
                "kind": "not_configured",
                "message": f"partner {exchange.target!r} has no service {exchange.service!r} any more",
            }
            self.log.warning("exchange_rejected", reason="not_configured")
            await self._record(
                exchange,
                [self._event(exchange, "rejected", error=error)],
                StateChange(state=State.REJECTED, last_error=error, notify=self._notify(exchange)),
            )
            return None
        versions = self.catalogue.versions(exchange.target, exchange.service)
        warnings: list[Problem] = []
        section = mapping.supplement if exchange.supplement_of else mapping.request
        try:
            if section is None:
                raise MappingError(
                    [
                        Problem(
                            message="this service's mapping takes no supplements", file=mapping.file
                        )
                    ],
                    mapping=mapping.file,
                )
            mapped, warnings = section.apply_checked(exchange.application)
            schema = self.catalogue.schema(exchange.target, exchange.service)
            if exchange.supplement_of:
                schema = None  # the partner's schema describes the application, not follow-ups
            if schema is not None and (broken := schema.problems(mapped, file=schema.file)):
                raise MappingError(broken, mapping=schema.file)
        except MappingError as exc:
            kind = "mapping" if exc.mapping == mapping.file else "schema"
            problems = [p.to_dict() for p in exc.problems]
            error = {
                "kind": kind,
                "message": f"{len(problems)} field(s) failed the mapping"
                if kind == "mapping"
                else f"the mapped request breaks the partner's schema in {len(problems)} place(s)",
                "problems": problems,
            }
            self.log.info("exchange_rejected", reason=kind, problems=len(problems))
            await self._record(
                exchange,
                [self._event(exchange, "mapping_failed", error=error, versions=versions)],
                StateChange(
                    state=State.REJECTED,
                    last_error=error,
                    mapping_versions=versions,
                    notify=self._notify(exchange),
                ),
            )
            return None
        data: dict[str, Any] = {"mapped": mapped, "versions": versions}
        if warnings:
            data["warnings"] = [w.to_dict() for w in warnings]
        event = Event(exchange_id=exchange.id, kind="mapped", at=now, data=data)
        return replace(exchange, mapped=mapped, mapping_versions=versions), event

    # -- one attempt ----------------------------------------------------------------------------

    async def _attempt(self, pending: list[Event], short: int) -> None:
        exchange = self._exchange
        assert exchange is not None
        guards = self.guards
        if not guards.breaker.try_acquire():
            if pending:
                # Held for a while: make the mapping durable and the exchange visibly queued.
                await self._record(
                    exchange,
                    [*pending, self._event(exchange, "held", reason="circuit breaker open")],
                    StateChange(state=State.QUEUED, mapping_versions=exchange.mapping_versions),
                    renew=True,
                )
                pending.clear()
                exchange = self._exchange = replace(exchange, state=State.QUEUED)
            self.log.info("exchange_held", reason="breaker_open")
            guards.waiting += 1
            try:
                await guards.breaker.acquire()
            finally:
                guards.waiting -= 1
        if guards.rate is not None:
            await guards.rate.acquire()
        number = exchange.attempts + 1
        started = self.clock()
        events = list(pending)
        if exchange.state is State.DELIVERING and exchange.attempts and short == 1:
            # Claimed mid-attempt from a worker that died: whether the partner got it is unknown.
            events.append(
                self._event(
                    exchange,
                    "attempt_finished",
                    at=started,
                    attempt=exchange.attempts,
                    outcome=Outcome.UNKNOWN_OUTCOME.value,
                    error={
                        "kind": Outcome.UNKNOWN_OUTCOME.value,
                        "message": "the worker holding this attempt stopped before recording its end",
                    },
                )
            )
        events.append(
            self._event(exchange, "attempt_started", at=started, attempt=number, owner=self.owner)
        )
        await self._record(
            exchange,
            events,
            StateChange(
                state=State.DELIVERING,
                attempts=number,
                mapping_versions=exchange.mapping_versions if pending else None,
            ),
            renew=True,
        )
        pending.clear()  # written: an in-process retry must not write the mapping again
        exchange = self._exchange = replace(exchange, state=State.DELIVERING, attempts=number)
        log = self.log.bind(attempt=number)
        request = OutboundRequest(
            exchange_id=exchange.id,
            idempotency_key=exchange.idempotency_key,
            service=exchange.service,
            payload=exchange.mapped or {},
            attempt=number,
            kind="supplement" if exchange.supplement_of else "application",
        )
        failure: AdapterError | None = None
        reply: Reply | None = None
        async with guards.slots:
            t0 = time.perf_counter()
            try:
                reply = await self.adapter.send(request)
            except AdapterError as exc:
                failure = exc
            duration = round((time.perf_counter() - t0) * 1000, 3)
        if failure is not None:
            await self._failed(exchange, number, duration, failure, short, log)
            return
        assert reply is not None
        guards.breaker.success()
        await self._delivered(exchange, number, duration, reply, log)

    async def _delivered(
        self, exchange: Exchange, number: int, duration: float, reply: Reply, log: Any
    ) -> None:
        finished = self.clock()
        events = [
            self._event(
                exchange,
                "attempt_finished",
                at=finished,
                attempt=number,
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
        await self._record(
            exchange,
            events,
            StateChange(
                state=State.DELIVERED,
                receipt=receipt or {},
                last_error=receipt_error,
                notify=self._notify(exchange),
                lifecycle_state=None if exchange.supplement_of else "submitted",
            ),
        )
        log.info("exchange_delivered", duration_ms=duration, status=reply.status)
        if exchange.supplement_of:
            await self._resubmitted(exchange, finished)

    async def _resubmitted(self, supplement: Exchange, at: float) -> None:
        """The correction round's material reached the partner: the application is submitted again."""
        parent = supplement.supplement_of
        assert parent is not None  # only called for supplements
        step = {
            "lifecycle": "submitted",
            "note": f"supplement {supplement.id} delivered",
            "supplement": supplement.id,
        }
        try:
            await self.journal.record(
                parent,
                [Event(exchange_id=parent, kind="lifecycle", at=at, data=step)],
                StateChange(
                    state=State.DELIVERED,
                    expect=frozenset({State.DELIVERED}),
                    notify=self._notify(supplement),
                    notify_as="lifecycle:submitted",
                    lifecycle_state="submitted",
                    # only the round that asked for it: a supplement delivered after the partner
                    # moved on (refused meanwhile, a second supplement, a replay) reopens nothing
                    expect_lifecycle="correction_required",
                ),
            )
        except LifecycleMoved as exc:
            late = {"reported": "submitted", "via": "supplement", **step, "reason": str(exc)}
            del late["lifecycle"]
            try:
                await self.journal.record(
                    parent,
                    [Event(exchange_id=parent, kind="lifecycle_refused", at=at, data=late)],
                    StateChange(state=State.DELIVERED, expect=frozenset({State.DELIVERED})),
                )
            except JournalError as err:
                self.log.warning("supplement_not_noted_on_parent", parent=parent, error=str(err))
        except JournalError as exc:
            self.log.warning("supplement_not_noted_on_parent", parent=parent, error=str(exc))

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
        short: int,
        log: Any,
    ) -> None:
        """Record a failed attempt and decide what comes next; raises _AgainNow to retry now."""
        now = self.clock()
        if isinstance(exc, PermanentError):
            outcome = Outcome.PERMANENT_ERROR
            self.guards.breaker.success()  # the partner answered: it is up
        else:
            outcome = (
                Outcome.UNKNOWN_OUTCOME
                if isinstance(exc, UnknownOutcomeError)
                else Outcome.TRANSIENT_ERROR
            )
            self.guards.breaker.failure()
        error = {"kind": outcome.value, "message": exc.message, "status": exc.status}
        events = [
            self._event(
                exchange,
                "attempt_finished",
                at=now,
                attempt=number,
                outcome=outcome.value,
                duration_ms=duration,
                request=dict(exc.transcript.request),
                response=dict(exc.transcript.response) if exc.transcript.response else None,
                error=error,
            )
        ]
        policy = self.partner.retry
        if outcome is Outcome.PERMANENT_ERROR:
            change = StateChange(
                state=State.REJECTED, last_error=error, notify=self._notify(exchange)
            )
            log.info("exchange_rejected", reason="partner", status=exc.status)
        elif (
            number - self._budget[0] >= policy.max_attempts
            or now - self._budget[1] >= policy.max_elapsed
        ):
            events.append(self._event(exchange, "retries_exhausted", at=now, attempts=number))
            change = StateChange(
                state=State.FAILED, last_error=error, notify=self._notify(exchange)
            )
            log.warning("exchange_failed", outcome=outcome.value, status=exc.status)
        elif (
            short < policy.short_attempts
            and (exc.retry_after or 0.0) <= policy.short_backoff * 8
            and self.guards.breaker.closed
        ):
            await self._record(
                exchange,
                events,
                StateChange(state=State.DELIVERING, last_error=error),
                renew=True,
            )
            log.info("exchange_retry_now", outcome=outcome.value, status=exc.status)
            raise _AgainNow()
        else:
            delay = max(
                policy.delay(
                    max(1, number - self._budget[0] - policy.short_attempts + 1), self.rng
                ),
                exc.retry_after or 0.0,
                self.guards.breaker.reopens_in(),
            )
            change = StateChange(
                state=State.RETRY_WAIT,
                last_error=error,
                next_attempt_at=now + delay,
                release_lease=True,
            )
            self.scheduled(now + delay)
            log.info(
                "exchange_retry_scheduled",
                outcome=outcome.value,
                status=exc.status,
                delay_s=round(delay, 3),
            )
        await self._record(exchange, events, change)

    def _notify(self, exchange: Exchange) -> bool:
        """Does the exchange's originator want to hear how it ended?"""
        inbound = exchange.direction is Direction.INBOUND
        return self.catalogue.config.callback_url(exchange.source, inbound=inbound) is not None

    # -- journal helpers ------------------------------------------------------------------------

    def _event(
        self, exchange: Exchange, kind: str, *, at: float | None = None, **data: Any
    ) -> Event:
        return Event(
            exchange_id=exchange.id, kind=kind, at=self.clock() if at is None else at, data=data
        )

    async def _record(
        self, exchange: Exchange, events: list[Event], change: StateChange, *, renew: bool = False
    ) -> None:
        await self.journal.record(
            exchange.id,
            events,
            change,
            owner=self.owner,
            lease_until=self._lease_until() if renew else None,
        )
