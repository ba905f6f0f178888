"""The delivery worker: maps and delivers leased exchanges with bounded concurrency per partner.

Work arrives two ways. Intake hands over each exchange it just journalled (already leased to this
worker, so there is no polling delay), and a poll loop claims from the journal whatever is due:
``retry_wait`` exchanges whose time has come and exchanges whose lease expired, judged by expiry alone.
That second path is how work resumes after a restart and, with several instances, after a crash.
A heartbeat extends the leases of everything in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from adapters.base import Adapter, OutboundRequest
from federation.catalogue import Catalogue
from federation.errors import (
    AdapterError,
    JournalError,
    LeaseLost,
    MappingError,
    PermanentError,
    Problem,
    UnknownOutcomeError,
)
from federation.logging import get_logger
from federation.models import Event, Exchange, Outcome, State, StateChange
from replay.journal import Journal


class Worker:
    """Delivers exchanges for one broker instance."""

    def __init__(
        self,
        *,
        journal: Journal,
        catalogue: Callable[[], Catalogue],
        adapters: Mapping[str, Adapter],
        owner: str,
        lease: float,
        poll_interval: float,
        max_in_flight: int = 10_000,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.journal = journal
        self._catalogue = catalogue
        self._adapters = adapters
        self.owner = owner
        self.lease = lease
        self.poll_interval = poll_interval
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._rng = rng or random.Random()
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._in_hand: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._log = get_logger(component="worker", owner=owner)

    # -- lifetime -----------------------------------------------------------------------------

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._poll_loop(), name="worker-poll"),
            asyncio.create_task(self._heartbeat_loop(), name="worker-heartbeat"),
        ]

    async def stop(self, *, grace: float = 5.0) -> None:
        """Stop claiming; let attempts in flight finish for ``grace`` seconds, then cancel them."""
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pending = list(self._in_hand.values())
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            for task in still:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Whatever was cancelled keeps its lease until expiry; the next claim takes it over.

    @property
    def in_flight(self) -> int:
        return len(self._in_hand)

    def offer(self, exchange: Exchange) -> None:
        """Take an exchange this instance just journalled (and holds the lease on)."""
        if exchange.id not in self._in_hand and not exchange.state.terminal:
            self._spawn(exchange)

    def forget_partner(self, partner_id: str) -> None:
        """Drop the partner's concurrency slots so the next attempt uses its new limit."""
        self._slots.pop(partner_id, None)

    def poke(self) -> None:
        """Ask the poll loop to look for due work now."""
        self._wake.set()

    # -- loops --------------------------------------------------------------------------------

    def _spawn(self, exchange: Exchange) -> None:
        task = asyncio.create_task(self._process(exchange), name=f"exchange-{exchange.id}")
        self._in_hand[exchange.id] = task
        xid = exchange.id

        def forget(_: asyncio.Task[None]) -> None:
            self._in_hand.pop(xid, None)

        task.add_done_callback(forget)

    async def _poll_loop(self) -> None:
        while True:
            room = self.max_in_flight - len(self._in_hand)
            if room > 0:
                now = self._clock()
                try:
                    claimed = await self.journal.claim(
                        owner=self.owner,
                        now=now,
                        lease_until=now + self.lease,
                        limit=min(room, 500),
                    )
                except JournalError as exc:
                    self._log.warning("claim_failed", error=str(exc))
                    claimed = []
                for ex in claimed:
                    if ex.id not in self._in_hand:
                        self._spawn(ex)
                if len(claimed) == min(room, 500):
                    continue  # more may be due right away
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            ids = list(self._in_hand)
            if not ids:
                continue
            try:
                await self.journal.renew(
                    owner=self.owner, ids=ids, lease_until=self._clock() + self.lease
                )
            except JournalError as exc:
                self._log.warning("lease_renewal_failed", error=str(exc), exchanges=len(ids))

    # -- one exchange -------------------------------------------------------------------------

    async def _process(self, exchange: Exchange) -> None:
        log = self._log.bind(
            exchange_id=exchange.id, partner=exchange.target, service=exchange.service
        )
        try:
            pending: list[Event] = []
            if exchange.state is State.RECEIVED:
                mapped = await self._map(exchange, log)
                if mapped is None:
                    return
                exchange, event = mapped
                pending.append(event)
            if exchange.state not in (
                State.RECEIVED,
                State.QUEUED,
                State.DELIVERING,
                State.RETRY_WAIT,
            ):
                return
            partner = self._catalogue().partner(exchange.target)
            if partner is None or exchange.target not in self._adapters:
                log.error("exchange_undeliverable", reason="partner no longer configured")
                return
            slots = self._slots.get(partner.id)
            if slots is None:
                slots = self._slots[partner.id] = asyncio.Semaphore(partner.concurrency)
            await self._attempt(exchange, pending, slots, log)
        except LeaseLost:
            log.info("lease_lost")
        except JournalError as exc:
            # Nothing more can be recorded now; the lease will expire and the work be claimed again.
            log.error("journal_write_failed", error=str(exc))
        except Exception:
            log.exception("worker_crashed_on_exchange")

    def _lease_until(self) -> float:
        return self._clock() + self.lease

    async def _map(self, exchange: Exchange, log: Any) -> tuple[Exchange, Event] | None:
        """Map the application; on success the ``mapped`` event is returned, not yet written.

        A failed mapping is recorded here (the exchange is rejected) and gives None.
        """
        catalogue = self._catalogue()
        mapping = catalogue.mapping(exchange.target, exchange.service)
        now = self._clock()
        error: dict[str, Any]
        if mapping is None:
            error = {
                "kind": "not_configured",
                "message": f"partner {exchange.target!r} has no service {exchange.service!r} any more",
            }
            log.warning("exchange_rejected", reason="not_configured")
            await self.journal.record(
                exchange.id,
                [Event(exchange_id=exchange.id, kind="rejected", at=now, data={"error": error})],
                StateChange(state=State.REJECTED, last_error=error),
                owner=self.owner,
            )
            return None
        versions = catalogue.versions(exchange.target, exchange.service)
        warnings: list[Problem] = []
        try:
            mapped, warnings = mapping.map_request_checked(exchange.application)
            schema = catalogue.schema(exchange.target, exchange.service)
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
            log.info("exchange_rejected", reason=kind, problems=len(problems))
            await self.journal.record(
                exchange.id,
                [
                    Event(
                        exchange_id=exchange.id,
                        kind="mapping_failed",
                        at=now,
                        data={"error": error, "versions": versions},
                    )
                ],
                StateChange(state=State.REJECTED, last_error=error, mapping_versions=versions),
                owner=self.owner,
            )
            return None
        data: dict[str, Any] = {"mapped": mapped, "versions": versions}
        if warnings:
            data["warnings"] = [w.to_dict() for w in warnings]
        event = Event(exchange_id=exchange.id, kind="mapped", at=now, data=data)
        return replace(exchange, mapped=mapped, mapping_versions=versions), event

    async def _attempt(
        self, exchange: Exchange, pending: list[Event], slots: asyncio.Semaphore, log: Any
    ) -> None:
        """One delivery attempt; ``pending`` events are written with its start.

        The partner slot is held only while the request is on the wire, not across journal
        commits: the concurrency limit protects the partner, and holding it through an fsync
        would leave the partner idle for nothing.
        """
        adapter = self._adapters[exchange.target]
        if exchange.mapped is None:
            log.error("exchange_undeliverable", reason="no mapped request in the journal")
            return
        number = exchange.attempts + 1
        started = self._clock()
        events = list(pending)
        if exchange.state is State.DELIVERING and exchange.attempts:
            # The previous holder died mid-attempt: whether the partner got it is unknown.
            lost = {
                "kind": Outcome.UNKNOWN_OUTCOME.value,
                "message": "the worker holding this attempt stopped before recording its end",
            }
            events.append(
                Event(
                    exchange_id=exchange.id,
                    kind="attempt_finished",
                    at=started,
                    data={
                        "attempt": exchange.attempts,
                        "outcome": Outcome.UNKNOWN_OUTCOME.value,
                        "error": lost,
                    },
                )
            )
        events.append(
            Event(
                exchange_id=exchange.id,
                kind="attempt_started",
                at=started,
                data={"attempt": number, "owner": self.owner},
            )
        )
        await self.journal.record(
            exchange.id,
            events,
            StateChange(
                state=State.DELIVERING,
                attempts=number,
                mapping_versions=exchange.mapping_versions if pending else None,
            ),
            owner=self.owner,
            lease_until=self._lease_until(),
        )
        alog = log.bind(attempt=number)
        request = OutboundRequest(
            exchange_id=exchange.id,
            idempotency_key=exchange.idempotency_key,
            service=exchange.service,
            payload=exchange.mapped,
            attempt=number,
        )
        async with slots:
            t0 = time.perf_counter()
            failure: AdapterError | None = None
            try:
                reply = await adapter.send(request)
            except AdapterError as exc:
                failure = exc
            duration = round((time.perf_counter() - t0) * 1000, 3)
        if failure is not None:
            await self._failed(exchange, number, duration, failure, alog)
            return
        finished = self._clock()
        data: dict[str, Any] = {
            "attempt": number,
            "outcome": Outcome.DELIVERED.value,
            "duration_ms": duration,
            "request": dict(reply.transcript.request),
            "response": dict(reply.transcript.response or {}),
        }
        events = [Event(exchange_id=exchange.id, kind="attempt_finished", at=finished, data=data)]
        receipt, receipt_error = self._receipt(exchange, reply.body, reply.problem)
        if receipt_error is not None:
            events.append(
                Event(
                    exchange_id=exchange.id,
                    kind="receipt_invalid",
                    at=finished,
                    data={"error": receipt_error},
                )
            )
        await self.journal.record(
            exchange.id,
            events,
            StateChange(state=State.DELIVERED, receipt=receipt or {}, last_error=receipt_error),
            owner=self.owner,
        )
        alog.info("exchange_delivered", duration_ms=duration, status=reply.status)

    def _receipt(
        self, exchange: Exchange, body: Any, problem: str | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if problem is not None:
            return None, {"kind": "receipt", "message": problem}
        mapping = self._catalogue().mapping(exchange.target, exchange.service)
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
        log: Any,
    ) -> None:
        now = self._clock()
        if isinstance(exc, PermanentError):
            outcome = Outcome.PERMANENT_ERROR
        elif isinstance(exc, UnknownOutcomeError):
            outcome = Outcome.UNKNOWN_OUTCOME
        else:
            outcome = Outcome.TRANSIENT_ERROR
        error = {"kind": outcome.value, "message": exc.message, "status": exc.status}
        data: dict[str, Any] = {
            "attempt": number,
            "outcome": outcome.value,
            "duration_ms": duration,
            "request": dict(exc.transcript.request),
            "response": dict(exc.transcript.response) if exc.transcript.response else None,
            "error": error,
        }
        events = [Event(exchange_id=exchange.id, kind="attempt_finished", at=now, data=data)]
        partner = self._catalogue().partner(exchange.target)
        policy = partner.retry if partner else None
        if outcome is Outcome.PERMANENT_ERROR:
            change = StateChange(state=State.REJECTED, last_error=error)
            log.info("exchange_rejected", reason="partner", status=exc.status)
        elif (
            policy is None
            or number >= policy.max_attempts
            or now - exchange.created_at >= policy.max_elapsed
        ):
            change = StateChange(state=State.FAILED, last_error=error)
            events.append(
                Event(
                    exchange_id=exchange.id,
                    kind="retries_exhausted",
                    at=now,
                    data={"attempts": number},
                )
            )
            log.warning("exchange_failed", outcome=outcome.value, status=exc.status)
        else:
            delay = max(policy.delay(number, self._rng), exc.retry_after or 0.0)
            change = StateChange(
                state=State.RETRY_WAIT,
                last_error=error,
                next_attempt_at=now + delay,
                release_lease=True,
            )
            log.info(
                "exchange_retry_scheduled",
                outcome=outcome.value,
                status=exc.status,
                delay_s=round(delay, 3),
            )
        await self.journal.record(exchange.id, events, change, owner=self.owner)


def _with(updated: Exchange, before: Exchange) -> Exchange:
    """The journal returns state without history; keep the payloads we already hold."""
    return replace(
        updated, application=before.application, mapped=before.mapped, events=before.events
    )
