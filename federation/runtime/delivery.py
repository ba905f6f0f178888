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
   ends the exchange ``unconfirmed`` (never delivered, never retried by itself), and so does an
   adapter that fails with an error no adapter is meant to raise (a bug of ours: the request may
   have reached the partner, and the partner's breaker hears nothing of it).

An exchange taken over whose attempt in hand already has its end in the history (appended by a
worker that lost the lease: :mod:`federation.runtime.ends`) is settled by that end, not sent again.
One taken over before that append reads the history again just before sending and after a failed
attempt: a delivery appended meanwhile settles it (the partner's yes stands, whatever it answers
the repeat; the repeat is journalled too), and a refusal while the attempt taken over still has no
end of its own ends it ``unconfirmed``, never ``rejected`` (it may be the refusal of a duplicate).

Classification lives in the adapters (see docs/delivery.md); here transient vs permanent vs
unrecognised is all that matters, plus Retry-After and whether the request may have reached the
partner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from structlog.typing import FilteringBoundLogger

from adapters.base import Adapter, OutboundRequest, Reply
from federation.domain.errors import (
    AdapterError,
    NotSendable,
    NotSent,
    PermanentError,
    TransientError,
    UnrecognisedReply,
)
from federation.domain.models import Event, Exchange, Outcome, State, StateChange
from federation.domain.retry import Decision, RetryNow
from federation.logging import bare_traceback
from federation.runtime import tracing
from federation.runtime.breaker import Sleep
from federation.runtime.ends import (
    Crash,
    End,
    awaiting_own_end,
    delivered_end,
    outcome_label,
    presumed_alone,
    unsettled_end,
)
from federation.runtime.mapping import MappingFailed, map_exchange
from federation.runtime.outcomes import Outcomes


@dataclass(frozen=True)
class _Sent:
    """What one send came back with, and how long it took (ms)."""

    result: Reply | AdapterError | Crash
    duration: float


@dataclass(kw_only=True)
class Delivery(Outcomes):
    """Delivers one exchange for a worker that holds its lease (the journal writes of each end:
    :class:`~federation.runtime.outcomes.Outcomes`)."""

    adapter: Adapter
    sleep: Sleep = asyncio.sleep
    _exchange: Exchange | None = field(default=None, init=False)
    _interrupted: bool = field(default=False, init=False)  # claimed mid-attempt from a dead worker
    _key: str = field(default="", init=False)  # the idempotency key the partner is sent
    # the history may settle the exchange otherwise than its row says: an attempt taken over
    # from an instance that may still append its end, or a delivery appended so
    _unsure: bool = field(default=False, init=False)

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
        self._unsure = self._interrupted or _unsettled_elsewhere(exchange)
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
            exchange = self._exchange
            assert exchange is not None  # set by run()
            ended = await self._ended_meanwhile(exchange)
            if ended is not None:
                return await self._settle(exchange, ended)
            request = await self._start(pending)
            sent = await self._send(request)
        exchange = self._exchange
        assert exchange is not None  # set by run()
        if self.metrics is not None:
            self.metrics.attempted(self.partner.id, outcome_label(sent.result), sent.duration / 1e3)
        log = self.log.bind(attempt=request.attempt)
        if isinstance(sent.result, AdapterError | Crash) and await self._settled_meanwhile(
            request.attempt, sent.duration, sent.result, log
        ):
            return None
        if isinstance(sent.result, Crash):
            await self._crashed(exchange, request.attempt, sent.duration, sent.result, log)
            return None
        if isinstance(sent.result, UnrecognisedReply):
            await self._unconfirmed(exchange, request.attempt, sent.duration, sent.result, log)
            return None
        if isinstance(sent.result, AdapterError):
            return await self._failed(exchange, request.attempt, sent.duration, sent.result, log)
        await self._delivered(exchange, request.attempt, sent.duration, sent.result, log)
        return None

    async def _ended_meanwhile(self, exchange: Exchange) -> End | None:
        """Just before sending, while the history may yet settle the exchange: the end to settle
        by instead, should it hold one now (an attempt the partner took, or the end of the
        attempt taken over, when nothing has been sent since)."""
        # settled only with an attempt in hand; one waiting or queued is sent, then settled
        if not self._unsure or exchange.state is not State.DELIVERING:
            return None
        fresh = await self.journal.get(exchange.id)
        if fresh is None:
            return None
        end = delivered_end(fresh) or (unsettled_end(fresh) if self._interrupted else None)
        if end is not None:
            self._interrupted = False  # that attempt has its end: none is presumed for it
        self._unsure = self._interrupted or _unsettled_elsewhere(fresh)
        return end

    async def _settled_meanwhile(
        self, number: int, duration: float, exc: AdapterError | Crash, log: FilteringBoundLogger
    ) -> bool:
        """After a failed attempt, while the history may yet settle the exchange: read it again.
        An attempt the partner took settles the exchange as delivered; a refusal while the
        attempt taken over still has no end of its own leaves it unconfirmed (the partner may
        have refused a duplicate). True when the exchange was so ended."""
        exchange = self._exchange
        assert exchange is not None
        if not self._unsure:
            return False
        fresh = await self.journal.get(exchange.id)
        if fresh is None:
            return False
        self._unsure = _unsettled_elsewhere(fresh)
        earlier = delivered_end(fresh)
        if earlier is not None:
            await self._delivered_before(exchange, number, duration, exc, earlier, log)
            return True
        # a refusal by the partner (not by its contract before sending)
        if isinstance(exc, PermanentError) and not isinstance(exc, NotSendable):
            timeouts, now = self.partner.timeouts, self.clock()
            if not awaiting_own_end(fresh, now=now, timeouts=timeouts, lease=self.lease):
                return False  # the attempt taken over is no longer in flight: the partner's no
            await self._refused_unsure(exchange, number, duration, exc, log)
            return True
        return False

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
        result: Reply | AdapterError | Crash
        async with self.guards.slots:
            t0 = time.perf_counter()
            try:
                result = await self.adapter.send(request)
            except AdapterError as exc:
                result = exc
            except Exception as exc:  # a bug in the adapter or a library it uses: a Crash
                result = Crash(exc)
            duration = round((time.perf_counter() - t0) * 1000, 3)
        if isinstance(result, Crash):
            # ours to fix, and no word of the partner's (it may have answered before the error,
            # or never been asked): its breaker and latencies hear nothing; a half-open probe's
            # place is given back by admit(), as for a request held on our side. Logged by the
            # error's type and frames only: its message could quote the application
            error, frames = result.kind, bare_traceback(result.error)
            self.log.error(
                "adapter_crashed", attempt=request.attempt, error=error, exception=frames
            )
            return _Sent(result, duration)
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


def _unsettled_elsewhere(exchange: Exchange) -> bool:
    """May the history settle ``exchange`` otherwise than its row says? An attempt taken over
    whose own worker may still append its end, or an attempt the partner took, appended after
    the exchange had moved on (the history is read again before sending and after a failure)."""
    return bool(presumed_alone(exchange)) or delivered_end(exchange) is not None


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
