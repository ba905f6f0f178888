"""Notices: telling a partner, in its own dialect and over its own protocol, how what it filed
with us stands.

An inbound service item with a ``report:`` in partners.yaml (config/notices.py) and a ``report:``
section in its mapping (mapping/report.py) hears each step as a notice instead of tongban's JSON
callback: the step is marked in the journal with the step itself (as any callback), the
notifier leases the mark, and :class:`Notices` maps the notice and sends it through an adapter of
the partner's protocol built for the notice route (a REST path under ``inbound.callback``, or a
SOAP operation of the partner's WSDL at its endpoint). As for any delivery: the partner's reply
rules say whether the partner said yes, its retry policy decides what a failure leads to, its
breaker policy guards the route, and every attempt is an event of the exchange with what went
over the wire (``notice_attempt``), followed by how the notice ended (``notice_delivered``,
``notice_rejected``, ``notice_unconfirmed``, ``notice_abandoned`` or ``notice_unmapped``).
:func:`resend_notice` re-arms the latest notice of an application for support staff (a replay:
same idempotency key, a ``notice_replayed`` event says who and why, and records what the notice
said that a replay may change, so the same notice goes out again: :func:`notice_message`). A step
or end that comes again is a notice of its own, with a key of its own (``<exchange id>:<mark>``,
the mark numbered the n-th time it comes: ``delivered:2`` once a replay delivered the
application to the local system again; :mod:`~federation.runtime.owed`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from adapters.base import Adapter, OutboundRequest, Reply
from adapters.registry import create_adapter
from adapters.rest import RestOptions, RestService
from adapters.soapoptions import SoapService
from federation.config import LOCAL, Partner, Service
from federation.domain.errors import (
    AdapterError,
    FederationError,
    MappingError,
    NotSendable,
    NotSent,
    PermanentError,
    UnknownOutcomeError,
    UnrecognisedReply,
)
from federation.domain.models import Direction, Event, Exchange, State, iso
from federation.domain.retry import Failure, RetryLater, RetryNow
from federation.domain.texts import said
from federation.domain.words import recorded
from federation.logging import get_logger
from federation.mapping.engine import Section
from federation.mapping.report import map_notice, notice_document, report_of
from federation.runtime.breaker import PartnerGuards, Sleep
from federation.runtime.callbacks import NotResent, as_resent, rearm
from federation.runtime.catalogue import Catalogue
from federation.runtime.owed import RESENDS, Owed, first_record, owed, record_of, step_of
from replay.journal import Journal

NOTICE_KINDS = (
    "notice_attempt",
    "notice_held",
    "notice_delivered",
    "notice_rejected",
    "notice_unconfirmed",
    "notice_abandoned",
    "notice_unmapped",
    "notice_replayed",
)


@dataclass(frozen=True, kw_only=True)
class Route:
    """Where an inbound exchange's notices go: the partner, its service item, the section."""

    partner: Partner
    service: Service
    section: Section


@dataclass(frozen=True, kw_only=True)
class Tried:
    """What one try at a notice leaves: events to journal, whether the mark is done, and when
    to try again if not."""

    events: list[Event]
    done: bool
    next_at: float | None = None


@dataclass
class _Channel:
    partner: Partner  # the partner as its notices see it (the route's protocol and endpoint)
    adapter: Adapter
    guards: PartnerGuards


def route_of(catalogue: Catalogue, exchange: Exchange) -> Route | None:
    """The notice route of an application a partner filed, if its item reports in its dialect."""
    if exchange.direction is not Direction.INBOUND:
        return None
    partner = catalogue.partner(exchange.source)
    inbound = partner.inbound if partner is not None else None
    service = inbound.services.get(exchange.service) if inbound is not None else None
    if partner is None or service is None or service.report is None:
        return None
    section = report_of(catalogue.mapping(LOCAL, exchange.service))
    return Route(partner=partner, service=service, section=section) if section else None


def reported(catalogue: Catalogue, exchange: Exchange) -> bool:
    """Does the partner that filed ``exchange`` hear about it by notices in its own dialect?"""
    return route_of(catalogue, exchange) is not None


def channel_partner(partner: Partner, service: Service) -> Partner:
    """The partner as a notice route sees it: one service item that sends the notice, over the
    partner's SOAP endpoint (an operation of its WSDL) or REST under its ``inbound.callback``."""
    route = service.report
    assert route is not None  # only routes come here
    code = service.code
    if route.operation is not None:
        item = replace(
            service, options={"soap": SoapService(operation=route.operation)}, reply=route.reply
        )
        return replace(partner, services={code: item}, reply=route.reply, inbound=None)
    callback = partner.inbound.callback if partner.inbound is not None else None
    assert callback is not None  # checked by the config reader
    assert route.path is not None
    item = replace(service, options={"rest": RestService(path=route.path)}, reply=route.reply)
    if partner.protocol == "rest":  # the partner's own REST settings (headers, credentials)
        return replace(
            partner, endpoint=callback, services={code: item}, reply=route.reply, inbound=None
        )
    # a SOAP partner's notice API: none of its SOAP settings or credentials apply
    return replace(
        partner,
        protocol="rest",
        endpoint=callback,
        options={"rest": RestOptions()},
        services={code: item},
        reply=route.reply,
        inbound=None,
        auth=None,
    )


def document_for(exchange: Exchange, state: str, event: int | None = None) -> dict[str, Any]:
    """The notice document of ``exchange`` (loaded with its events) for the mark ``state``: its
    step as journalled at ``events[event]`` (else the latest such step), with the steps so far."""
    step = step_of(state)
    said: dict[str, Any] = {}
    at = exchange.updated_at
    events = exchange.events if event is None else exchange.events[: event + 1]
    for e in events:
        if e.kind == "lifecycle" and e.data.get("lifecycle") == step:
            said, at = dict(e.data), e.at
    if event is not None:
        at = events[-1].at
    return notice_document(
        step=step,
        at=iso(at) or "",
        steps=replace(exchange, events=tuple(events)).lifecycle(),
        original=exchange.original(),
        application=exchange.application,
        note=said.get("note"),
        case_number=said.get("case_number"),
    )


class Notices:
    """Sends notices for one broker instance: one adapter and one set of guards per route."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        adapters: Callable[[Partner], Adapter] = create_adapter,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._create = adapters
        self._rng = rng or random.Random()
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._retired: list[Adapter] = []
        self._log = get_logger(component="notices")

    async def close(self) -> None:
        for adapter in [*(c.adapter for c in self._channels.values()), *self._retired]:
            await adapter.close()
        self._channels.clear()
        self._retired.clear()

    def guards(self, partner_id: str, service: str) -> PartnerGuards | None:
        """The guards of a route in use (for tests and the partners view)."""
        channel = self._channels.get((partner_id, service))
        return channel.guards if channel is not None else None

    async def _channel(self, route: Route) -> _Channel:
        """The route's adapter and guards, (re)built when partners.yaml changed it."""
        wanted = channel_partner(route.partner, route.service)
        key = (route.partner.id, route.service.code)
        current = self._channels.get(key)
        if current is not None and current.partner == wanted:
            return current
        adapter = self._create(wanted)
        await adapter.start()
        if current is not None:
            self._retired.append(current.adapter)
        guards = PartnerGuards.for_partner(wanted, sleep=self._sleep)
        channel = self._channels[key] = _Channel(partner=wanted, adapter=adapter, guards=guards)
        return channel

    async def attempt(self, route: Route, exchange: Exchange, state: str, attempt: int) -> Tried:
        """One try at the oldest notice ``exchange`` (loaded with its events) owes while its mark
        is ``state`` (:func:`~federation.runtime.owed.owed`): the mark is due again at once
        while later steps are owed. ``attempt`` counts only for an exchange given without its
        history; else the history's tries at that notice do. Nothing is owed once the pending
        mark's notice has ended (a try whose lease a replay freed left it): finished unsent."""
        queue = owed(exchange, state)
        if not queue:
            self._log.info("notice_already_told", exchange_id=exchange.id, state=state)
            return Tried(events=[], done=True)
        tried = await self._try(route, exchange, queue[0], attempt)
        if tried.done and len(queue) > 1:
            return Tried(events=tried.events, done=False, next_at=self._clock())
        return tried

    async def _try(self, route: Route, exchange: Exchange, due: Owed, attempt: int) -> Tried:
        state = due.mark
        attempt = due.attempts + 1 if exchange.events else attempt
        mark = {"state": state, "step": step_of(state)}
        event = _events(exchange, self._clock)
        log = self._log.bind(exchange_id=exchange.id, partner=route.partner.id, **mark)
        try:
            body, _ = map_notice(route.section, document_for(told(exchange, due), state, due.event))
        except MappingError as exc:
            problems = [p.to_dict() for p in exc.problems]
            log.warning("notice_unmapped", problems=len(problems))
            return Tried(events=[event("notice_unmapped", **mark, problems=problems)], done=True)
        try:
            channel = await self._channel(route)
        except FederationError as exc:
            log.error("notice_route_broken", error=str(exc))
            error = {"kind": "configuration", "message": str(exc)}
            return Tried(events=[event("notice_abandoned", **mark, error=error)], done=True)
        breaker = channel.guards.breaker
        if not breaker.closed and (wait := breaker.reopens_in()) > 0:
            log.info("notice_held", reopens_in_s=round(wait, 3))
            held = event("notice_held", **mark, reason="circuit breaker open")
            return Tried(events=[held], done=False, next_at=self._clock() + wait)
        request = OutboundRequest(
            exchange_id=exchange.id,
            idempotency_key=f"{exchange.id}:{state}",
            service=route.service.code,
            payload=body,
            attempt=attempt,
        )
        sent = await _send(channel, request)
        since = due.since if due.since is not None else exchange.updated_at
        return self._outcome(channel, exchange, mark, (attempt, since), sent, log)

    def _outcome(
        self,
        channel: _Channel,
        exchange: Exchange,
        mark: dict[str, str],
        tries: tuple[int, float],
        sent: tuple[Reply | AdapterError, float],
        log: Any,
    ) -> Tried:
        """Journal events and what follows, from the partner's answer, as delivery does
        (``tries``: this try's number, and when the notice became due: the end, or the
        resend's asking)."""
        result, duration = sent
        attempt, since = tries
        event = _events(exchange, self._clock)
        tried: dict[str, Any] = {**mark, "attempt": attempt, "duration_ms": duration}
        if isinstance(result, Reply):
            transcript = {"request": dict(result.transcript.request)}
            transcript["response"] = dict(result.transcript.response or {})
            first = event("notice_attempt", **tried, outcome="delivered", **transcript)
            log.info("notice_delivered", attempt=attempt, status=result.status)
            done = event("notice_delivered", **mark, status=result.status)
            return Tried(events=[first, done], done=True)
        error = _error(result)
        kind = _kind(result)
        first = event(
            "notice_attempt",
            **tried,
            outcome=kind,
            request=dict(result.transcript.request),
            response=dict(result.transcript.response) if result.transcript.response else None,
            error=error,
        )
        if isinstance(result, UnrecognisedReply):
            log.warning("notice_unconfirmed", attempt=attempt, status=result.status)
            return Tried(events=[first, event("notice_unconfirmed", **mark)], done=True)
        if isinstance(result, PermanentError):
            log.warning("notice_rejected", attempt=attempt, status=result.status)
            return Tried(events=[first, event("notice_rejected", **mark)], done=True)
        breaker = channel.guards.breaker
        failure = Failure(
            retry_after=result.retry_after,
            held_for=None if breaker.closed else breaker.reopens_in(),
        )
        strategy = channel.partner.retry.strategy()
        now = self._clock()
        decision = strategy.decide(failure, attempt, now - since, self._rng)
        if isinstance(decision, RetryNow | RetryLater):
            log.info("notice_retry_scheduled", attempt=attempt, delay_s=round(decision.after, 3))
            return Tried(events=[first], done=False, next_at=now + decision.after)
        log.warning("notice_abandoned", attempts=attempt)
        ended = event("notice_abandoned", **mark, attempts=attempt, error=error)
        return Tried(events=[first, ended], done=True)


async def _send(channel: _Channel, request: OutboundRequest) -> tuple[Reply | AdapterError, float]:
    """Send through the route's breaker, rate limit and slots; the answer and its time (ms)."""
    guards = channel.guards
    result: Reply | AdapterError
    async with guards.breaker.admit():
        if guards.rate is not None:
            await guards.rate.acquire()
        async with guards.slots:
            t0 = time.perf_counter()
            try:
                result = await channel.adapter.send(request)
            except AdapterError as exc:
                result = exc
            duration = round((time.perf_counter() - t0) * 1000, 3)
        if isinstance(result, NotSent | NotSendable):
            pass  # held or refused on our side: the partner was not asked, its breaker hears nothing
        elif isinstance(result, AdapterError) and not _answered(result):
            guards.breaker.failure()
        else:
            guards.breaker.success()  # an answer, even a refusal: the partner is up
    return result, duration


def _answered(exc: AdapterError) -> bool:
    return isinstance(exc, PermanentError | UnrecognisedReply)


def _kind(exc: AdapterError) -> str:
    if isinstance(exc, UnrecognisedReply):
        return "unconfirmed"
    if isinstance(exc, PermanentError):
        return "permanent_error"
    if isinstance(exc, UnknownOutcomeError):
        return "unknown_outcome"
    return "transient_error"


def _error(exc: AdapterError) -> dict[str, Any]:
    error: dict[str, Any] = {"kind": _kind(exc), "message": exc.message, "status": exc.status}
    if exc.partner_code is not None:
        error["partner_code"] = exc.partner_code
    if exc.partner_message is not None:
        error["partner_message"] = exc.partner_message
    return recorded(error)  # the partner's words apart from ours: readers may not all see them


def _events(exchange: Exchange, clock: Callable[[], float]) -> Callable[..., Event]:
    """Makes the events of one exchange, stamped now (values that are None left out)."""

    def make(kind: str, **data: Any) -> Event:
        kept = {k: v for k, v in data.items() if v is not None}
        return Event(exchange_id=exchange.id, kind=kind, at=clock(), data=kept)

    return make


def told(exchange: Exchange, due: Owed) -> Exchange:
    """``exchange`` (loaded with its events) as the notice ``due`` tells it: one whose message
    is recorded, as it stood when first recorded (a resend's ``notice_replayed``, or the
    ``replayed`` event of a replay of the end it tells, records the receipt and time; the steps
    are those journalled before it), whatever a replay has brought since; any other, as it
    stands."""
    if due.resend is None:
        return exchange
    return as_resent(exchange, exchange.events[due.resend])


def notice_message(exchange: Exchange, mark: str) -> dict[str, Any]:
    """What a resend of ``exchange``'s notice ``mark`` keeps of the notice it sends again (the
    ``resends`` field of its ``notice_replayed``): the end's state, the local system's receipt
    (which the notice may quote as ``original.receipt``) and the time; as first recorded, if
    it is (an earlier resend of the mark, whose own write moved the exchange's last change:
    :func:`~federation.runtime.owed.first_record`). Journalled in the event's data, sealed as
    every event's is, and masked with the rest of it for a reader who may not reveal."""
    first = first_record(exchange, mark)
    told = record_of(exchange.events[first]) if first is not None else None
    if told is not None:
        return {RESENDS: dict(told)}
    return {
        RESENDS: {
            "at": exchange.updated_at,
            "state": exchange.state.value,
            "receipt": exchange.receipt,
        }
    }


def latest_notice(exchange: Exchange) -> str | None:
    """The mark of the latest notice of ``exchange`` (loaded with its events), if any."""
    for event in reversed(exchange.events):
        if event.kind in NOTICE_KINDS and isinstance(event.data.get("state"), str):
            return str(event.data["state"])
    return None


async def resend_notice(
    journal: Journal, exchange_id: str, *, reason: str, by: str, clock: Callable[[], float]
) -> str:
    """Send the latest notice of a delivered application a partner filed once more (the same
    idempotency key); returns its mark. :class:`NotResent` says why not."""
    if not reason.strip():
        raise NotResent(said("a resent notice needs a reason"))
    exchange = await journal.get(exchange_id)
    if exchange is None or exchange.direction is not Direction.INBOUND:
        raise NotResent(said("no application a partner filed has id %(id)s", id=exchange_id))
    state = _resendable(exchange)
    moved = said(
        "exchange %(id)s changed while its notice was being queued again (a new step or "
        "another resend came first): nothing was resent; the broker is sending the "
        "notice now pending",
        id=exchange_id,
    )
    await rearm(
        journal,
        exchange,
        "notice_replayed",
        state,
        moved,
        reason=reason,
        by=by,
        at=clock(),
        told=notice_message(exchange, state),
    )
    return state


def _resendable(exchange: Exchange) -> str:
    """The mark of the notice of ``exchange`` (an application a partner filed) to send again;
    NotResent if there is none to send, or one is pending (the broker sends it anyway)."""
    exchange_id = exchange.id
    if exchange.state is not State.DELIVERED:
        raise NotResent(
            said(
                "exchange %(id)s is %(state)s: only the notices of an application delivered to "
                "the local system can be resent",
                id=exchange_id,
                state=exchange.state.value,
            )
        )
    if exchange.notify_state is not None:
        raise NotResent(
            said(
                "a notice of exchange %(id)s is still pending (latest step %(mark)s): the broker "
                "is sending it; resend once it has ended",
                id=exchange_id,
                mark=exchange.notify_state,
            )
        )
    state = latest_notice(exchange)
    if state is None:
        raise NotResent(said("exchange %(id)s has sent no notice yet", id=exchange_id))
    return state
