"""Inbound: partners file applications with us (``POST /v1/partners/{partner}/applications``).

The partner authenticates with ``Authorization: Bearer <key>``; partners.yaml holds only the SHA-256
of each key (``inbound.keys_sha256``). The application, in the partner's own format, is journalled
first (an exchange with direction ``inbound``, source = the partner, target = the local system) and
then mapped by the service's inbound mapping and delivered to the local system like any outbound
exchange: same retries, idempotency, replay and search. Every refusal is answered with problem
details and kept in the journal's refusals, as at our own intake.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from federation.api import conform, intent, signed
from federation.api.auth import authenticate_partner, filing_partner
from federation.api.edge import (
    BROKER,
    EXCHANGE_ID_RE,
    Received,
    accepted,
    json_object,
    material_of,
    refuse,
)
from federation.api.problems import ProblemError
from federation.config import LOCAL, Inbound, Partner
from federation.domain.errors import (
    RequestRefused,
)
from federation.domain.models import (
    Direction,
    Exchange,
    Lifecycle,
    State,
)
from federation.runtime.broker import Broker
from federation.runtime.filing import file_supplement, file_with
from federation.runtime.lifecycle import (
    exchange_for,
    filed_by,
    is_state,
    lifecycle_of,
    record_lifecycle,
)

INBOUND_KEYS = {"service", "application"}


def setup(app: web.Application) -> None:
    """Register the inbound routes on the broker's app."""
    app.router.add_post("/v1/partners/{partner}/applications", file_application)
    app.router.add_post("/v1/partners/{partner}/status", status_update)
    app.router.add_get("/v1/partners/{partner}/applications/{key}", application_status)
    app.router.add_post("/v1/partners/{partner}/applications/{key}/supplements", partner_supplement)
    app.router.add_post("/v1/exchanges/{id}/lifecycle", local_decision)
    if signed.NONCES not in app:
        app[signed.NONCES] = signed.NonceMemory()


async def status_update(request: web.Request) -> web.Response:
    """A partner reports where an application we sent stands (accepted, 补正, approved …).

    The update names our idempotency key (sent with every attempt); the service's mapping maps
    it (its ``status:`` section) to ``{lifecycle, at, note}``; it is journalled as an event of the
    exchange and forwarded to the originating system's callback.
    """
    broker = request.app[BROKER]
    pid = request.match_info["partner"]
    got = Received(request)
    try:
        partner = broker.catalogue.partner(pid)
        if partner is None or partner.inbound is None or pid == LOCAL:
            raise ProblemError(404, "unknown-partner", f"no partner {pid!r} reports status here")
        authenticate_partner(request, partner.inbound, pid)
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        await signed.verify(request, partner, body)
        update = json_object(body)
        exchange = await exchange_for(broker.journal, pid, update)
        lifecycle = lifecycle_of(broker.catalogue, exchange, update)
        state, changed = await record_lifecycle(
            broker.journal, broker.catalogue, exchange, lifecycle, update
        )
    except RequestRefused as exc:
        await got.refuse(broker, exc, None)
        raise
    body_out = {"exchange_id": exchange.id, "lifecycle": state, "changed": changed}
    return web.Response(body=orjson.dumps(body_out), content_type="application/json")


LOCAL_KEYS = {"lifecycle", "note", "case_number"}


async def local_decision(request: web.Request) -> web.Response:
    """The local system's word on an application a partner filed with us (accepted, 补正, approved …).

    ``POST /v1/exchanges/{id}/lifecycle`` with ``{"lifecycle": …, "note": …, "case_number": …}`` in
    tongban's own vocabulary, authenticated with a key of the local system (``local.keys_sha256``:
    partners must not be able to decide on what they filed): journalled as a lifecycle step like a
    partner's, under the same rules, and forwarded to the partner that filed it (its
    ``inbound.callback``; it can also ask, with ``GET /v1/partners/{partner}/applications/{key}``).
    """
    broker = request.app[BROKER]
    xid = request.match_info["id"]
    got = Received(request)
    try:
        keys = broker.catalogue.config.local_keys_sha256
        if not keys:
            raise ProblemError(
                403,
                "forbidden",
                "the local system has no key (local.keys_sha256 in partners.yaml): decisions "
                "are not taken from anyone",
            )
        authenticate_partner(request, Inbound(keys_sha256=keys, services={}), LOCAL)
        exchange = await _decidable(broker, xid)
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        update = json_object(body)
        state, changed = await record_lifecycle(
            broker.journal,
            broker.catalogue,
            exchange,
            _local_lifecycle(update),
            update,
            via="local",
        )
    except RequestRefused as exc:
        await got.refuse(broker, exc, None)
        raise
    body_out = {"exchange_id": exchange.id, "lifecycle": state, "changed": changed}
    return web.Response(body=orjson.dumps(body_out), content_type="application/json")


async def _decidable(broker: Broker, xid: str) -> Exchange:
    """The exchange ``xid`` if the local system may decide on it: an application a partner filed
    with us, delivered, and not a supplement."""
    exchange = await broker.get(xid) if EXCHANGE_ID_RE.fullmatch(xid) else None
    if exchange is None:
        raise ProblemError(404, "not-found", f"no exchange {xid}")
    if exchange.supplement_of is not None:
        raise ProblemError(
            409,
            "supplement",
            f"exchange {exchange.id} is a supplement to {exchange.supplement_of}: report "
            "decisions on the application",
        )
    if exchange.direction is not Direction.INBOUND:
        raise ProblemError(
            409,
            "not-inbound",
            f"exchange {exchange.id} was sent to {exchange.target}, which reports its "
            f"lifecycle (POST /v1/partners/{exchange.target}/status)",
        )
    if exchange.state is not State.DELIVERED:
        raise ProblemError(
            409,
            "not-delivered",
            f"exchange {exchange.id} is {exchange.state.value}, not delivered",
        )
    return exchange


def _local_lifecycle(update: dict[str, Any]) -> dict[str, Any]:
    errors = [
        {"path": k, "message": "unknown field (lifecycle, note, case_number)"}
        for k in sorted(set(update) - LOCAL_KEYS)
    ]
    state = update.get("lifecycle")
    if not is_state(state):
        known = ", ".join(s.value for s in Lifecycle)
        errors.append({"path": "lifecycle", "message": f"{state!r} is not one of: {known}"})
    errors += [
        {"path": k, "message": "must be text"}
        for k in ("note", "case_number")
        if k in update and not isinstance(update[k], str)
    ]
    if errors:
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
        raise ProblemError(400, "invalid-request", detail, errors=errors)
    return {k: update[k] for k in sorted(LOCAL_KEYS) if update.get(k) is not None}


async def application_status(request: web.Request) -> web.Response:
    """What became of an application the partner filed, by the Idempotency-Key it filed it with.

    Authenticated like filing; a partner sees only its own applications. Answers the delivery
    state to the local system and the lifecycle at the local authority, step by step.
    """
    broker = request.app[BROKER]
    pid = request.match_info["partner"]
    key = request.match_info["key"]
    try:
        await signed.verify(request, filing_partner(request, broker, pid), b"")
        full = await filed_by(broker.journal, pid, key)
    except RequestRefused as exc:
        await refuse(request, broker, exc, key, b"", 0)
        raise
    body = {
        "exchange_id": full.id,
        "service": full.service,
        "idempotency_key": full.idempotency_key,
        "state": full.state.value,
        "lifecycle": full.lifecycle(),
        "receipt": full.receipt,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def partner_supplement(request: web.Request) -> web.Response:
    """A correction round the other way: the local authority asked for more material (补正) on
    an application the partner filed, and the partner sends it.

    ``POST /v1/partners/{partner}/applications/{key}/supplements`` with the partner's key, its own
    ``Idempotency-Key`` for the supplement and ``{"material": {…}}`` in the partner's format. Mapped
    now by the inbound mapping's ``supplement:`` section (422 if it cannot be: nothing reaches the
    local system half-mapped), journalled as a follow-up and delivered to the local system.
    """
    broker = request.app[BROKER]
    pid = request.match_info["partner"]
    key = intent.key_as_sent(request)
    got = Received(request)
    try:
        partner = filing_partner(request, broker, pid)
        parent = await filed_by(broker.journal, pid, request.match_info["key"])
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        await signed.verify(request, partner, body)
        intent.only(request, intent.signed_in_query(partner))  # no dry run here
        one = intent.idempotency_key(request)
        exchange, created = await file_supplement(
            broker, parent, material_of(body), one, map_now=True
        )
    except RequestRefused as exc:
        await got.refuse(broker, exc, key)
        raise
    return accepted(exchange, created)


async def file_application(request: web.Request) -> web.Response:
    """A partner files an application for the local system: journal, then deliver."""
    broker = request.app[BROKER]
    pid = request.match_info["partner"]
    key = intent.key_as_sent(request)
    got = Received(request)
    try:
        partner = filing_partner(request, broker, pid)
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        await signed.verify(request, partner, body)
        dry = intent.dry_run(request, intent.signed_in_query(partner))
        one = intent.idempotency_key(request)
        service, application = _parse(body)
        if dry:
            return _dry_run(broker, partner, service, application)
        exchange, created = await file_with(
            broker,
            partner,
            service,
            application,
            one,
            missing_key="send an Idempotency-Key header (1–255 visible ASCII characters), unique "
            "per application",
        )
    except RequestRefused as exc:
        await got.refuse(broker, exc, key)
        raise
    return accepted(exchange, created)


def _dry_run(
    broker: Broker, partner: Partner, service: str, application: dict[str, object]
) -> web.Response:
    """What filing would map ``application`` into (or every error), journalling nothing."""
    services = partner.inbound.services if partner.inbound is not None else {}
    if service not in services:
        raise ProblemError(
            404,
            "unknown-service",
            f"{partner.id!r} files no service {service!r} with us",
            services=sorted(services),
        )
    return conform.answer(broker.catalogue, LOCAL, service, application)


def _parse(body: bytes) -> tuple[str, dict[str, object]]:
    data = json_object(body)
    errors = []
    if not isinstance(data.get("service"), str) or not data["service"].strip():
        errors.append({"path": "service", "message": "required text"})
    if not isinstance(data.get("application"), dict):
        errors.append({"path": "application", "message": "required JSON object"})
    errors += [{"path": k, "message": "unknown field"} for k in sorted(set(data) - INBOUND_KEYS)]
    if errors:
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
        raise ProblemError(400, "invalid-request", detail, errors=errors)
    return data["service"], data["application"]
