"""Inbound: partners file applications with us (``POST /v1/partners/{partner}/applications``).

The partner authenticates with ``Authorization: Bearer <key>``; partners.yaml holds only the SHA-256
of each key (``inbound.keys_sha256``). The application, in the partner's own format, is journalled
first (an exchange with direction ``inbound``, source = the partner, target = the local system) and
then mapped by the service's inbound mapping and delivered to the local system like any outbound
exchange: same retries, idempotency, replay and search. Every refusal is answered with problem
details and kept in the journal's refusals, as at our own intake.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import orjson
from aiohttp import web

from federation.api.intake import (
    BROKER,
    EXCHANGE_ID_RE,
    KEY_RE,
    Received,
    accepted,
    conflict,
    file_supplement,
    key_matches,
    material_of,
    refuse,
)
from federation.api.problems import ProblemError
from federation.config import LOCAL, Inbound, Partner
from federation.domain.errors import IdempotencyConflict, LifecycleMoved, MappingError
from federation.domain.models import (
    LIFECYCLE_NEXT,
    Direction,
    Event,
    Exchange,
    Lifecycle,
    State,
    StateChange,
)
from federation.runtime.broker import Submission
from replay.journal import Query

INBOUND_KEYS = {"service", "application"}


def setup(app: web.Application) -> None:
    """Register the inbound routes on the broker's app."""
    app.router.add_post("/v1/partners/{partner}/applications", file_application)
    app.router.add_post("/v1/partners/{partner}/status", status_update)
    app.router.add_get("/v1/partners/{partner}/applications/{key}", application_status)
    app.router.add_post("/v1/partners/{partner}/applications/{key}/supplements", partner_supplement)
    app.router.add_post("/v1/exchanges/{id}/lifecycle", local_decision)
    from federation.api import soapinbound  # imports this module

    soapinbound.setup(app)


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
        _authenticate(request, partner.inbound, pid)
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        update = _json_object(body)
        exchange = await exchange_for(broker, pid, update)
        lifecycle = lifecycle_of(broker, exchange, update)
        state, changed = await record_lifecycle(broker, exchange, lifecycle, update)
    except ProblemError as exc:
        await refuse(request, broker, exc, None, got.body, got.size)
        raise
    body_out = {"exchange_id": exchange.id, "lifecycle": state, "changed": changed}
    return web.Response(body=orjson.dumps(body_out), content_type="application/json")


LOCAL_KEYS = {"lifecycle", "note", "case_number"}


def is_state(value: object) -> bool:
    """Is ``value`` one of the lifecycle states (text, not a list or a number that maps to one)?"""
    return isinstance(value, str) and value in LIFECYCLE_NEXT


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
        _authenticate(request, Inbound(keys_sha256=keys, services={}), LOCAL)
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
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        update = _json_object(body)
        state, changed = await record_lifecycle(
            broker, exchange, _local_lifecycle(update), update, via="local"
        )
    except ProblemError as exc:
        await refuse(request, broker, exc, None, got.body, got.size)
        raise
    body_out = {"exchange_id": exchange.id, "lifecycle": state, "changed": changed}
    return web.Response(body=orjson.dumps(body_out), content_type="application/json")


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
        filing_partner(request, broker, pid)
        full = await filed_by(broker, pid, key)
    except ProblemError as exc:
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
    key = request.headers.get("Idempotency-Key")
    got = Received(request)
    try:
        filing_partner(request, broker, pid)
        parent = await filed_by(broker, pid, request.match_info["key"])
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        exchange, created = await file_supplement(
            broker, parent, material_of(body), key, map_now=True
        )
    except ProblemError as exc:
        await refuse(request, broker, exc, key, got.body, got.size)
        raise
    return accepted(exchange, created)


async def filed_by(broker: Any, pid: str, key: str) -> Exchange:
    """The application partner ``pid`` filed with that idempotency key, with its history."""
    found = await broker.journal.search(
        Query(source=pid, partner=LOCAL, idempotency_key=key, limit=1)
    )
    full: Exchange | None = await broker.journal.get(found[0].id) if found else None
    if full is None or full.direction is not Direction.INBOUND:
        raise ProblemError(404, "not-found", f"{pid} filed no application with that key")
    return full


async def record_lifecycle(
    broker: Any,
    exchange: Exchange,
    lifecycle: dict[str, Any],
    update: Any,
    *,
    via: str = "callback",
) -> tuple[str, bool]:
    """Journal a partner's word on an application and tell its source (callback or poll alike).

    Returns the state and whether it was a step: the same state as the latest is none (nothing is
    journalled). A state that may not follow the latest (:data:`LIFECYCLE_NEXT`) is journalled as a
    ``lifecycle_refused`` event of the exchange (once, if ``exchange`` comes with its events and the
    last word was the same refusal) and raised as 409 problem details; the latest state stands.
    The step is written only if the latest word is still the one it was checked against; if
    another update got there first, it is checked again against that one.
    """
    for _ in range(3):
        try:
            return await _record_step(broker, exchange, lifecycle, update, via)
        except LifecycleMoved:
            moved = await broker.journal.get(exchange.id)
            if moved is None:
                break
            exchange = moved
    raise ProblemError(
        409, "lifecycle-busy", f"exchange {exchange.id} keeps changing; send the update again"
    )


async def _record_step(
    broker: Any, exchange: Exchange, lifecycle: dict[str, Any], update: Any, via: str
) -> tuple[str, bool]:
    state: str = lifecycle["lifecycle"]
    latest = exchange.lifecycle_state or Lifecycle.SUBMITTED.value
    if state == latest:
        return state, False
    following = LIFECYCLE_NEXT.get(latest, frozenset())
    if state not in following:
        said = [e for e in exchange.events if e.kind in ("lifecycle", "lifecycle_refused")]
        repeated = bool(said) and said[-1].kind == "lifecycle_refused"
        if not (repeated and said[-1].data.get("reported") == state):
            refused = {"reported": state, "after": latest, "via": via, "partner_update": update}
            await broker.journal.record(
                exchange.id,
                [
                    Event(
                        exchange_id=exchange.id,
                        kind="lifecycle_refused",
                        at=time.time(),
                        data=refused,
                    )
                ],
                StateChange(state=State.DELIVERED, expect=frozenset({State.DELIVERED})),
            )
        may = ", ".join(s.value for s in Lifecycle if s.value in following) or "nothing"
        raise ProblemError(
            409,
            "lifecycle-out-of-order",
            f"exchange {exchange.id} is {latest}: {state} cannot follow it (may follow: {may})",
            lifecycle=latest,
        )
    inbound = exchange.direction is Direction.INBOUND
    callback = broker.catalogue.config.callback_url(exchange.source, inbound=inbound)
    await broker.journal.record(
        exchange.id,
        [
            Event(
                exchange_id=exchange.id,
                kind="lifecycle",
                at=time.time(),
                data={**lifecycle, "partner_update": update, "via": via},
            )
        ],
        StateChange(
            state=State.DELIVERED,
            expect=frozenset({State.DELIVERED}),
            notify=callback is not None,
            notify_as=f"lifecycle:{state}",
            lifecycle_state=state,
            expect_lifecycle=exchange.lifecycle_state,
        ),
    )
    return state, True


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProblemError(400, "malformed-json", f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProblemError(400, "invalid-request", "body must be a JSON object")
    return data


async def exchange_for(broker: Any, pid: str, update: dict[str, Any]) -> Exchange:
    key = update.get("idempotency_key")
    if not isinstance(key, str) or not key:
        raise ProblemError(400, "invalid-request", "name the application by its idempotency_key")
    found = await broker.journal.search(Query(partner=pid, idempotency_key=key, limit=2))
    if not found:
        raise ProblemError(404, "not-found", f"no application sent to {pid!r} with that key")
    if len(found) > 1:
        raise ProblemError(409, "ambiguous", "two applications carry that key: send exchange_id")
    # with its history: the lifecycle rules look at it, and at whether it is an application
    exchange: Exchange | None = await broker.journal.get(found[0].id)
    if exchange is None:
        raise ProblemError(404, "not-found", f"no application sent to {pid!r} with that key")
    if exchange.supplement_of is not None:
        raise ProblemError(
            409,
            "supplement",
            f"that key names a supplement to exchange {exchange.supplement_of}: report on the "
            "application by its own key",
        )
    if exchange.state is not State.DELIVERED:
        raise ProblemError(
            409, "not-delivered", f"exchange {exchange.id} is {exchange.state.value}, not delivered"
        )
    return exchange


def lifecycle_of(broker: Any, exchange: Exchange, update: dict[str, Any]) -> dict[str, Any]:
    mapping = broker.catalogue.mapping(exchange.target, exchange.service)
    try:
        mapped = mapping.map_status(update) if mapping is not None else None
    except MappingError as exc:
        problems = [p.to_dict() for p in exc.problems]
        raise ProblemError(
            422, "mapping-failed", "the status update does not map", errors=problems
        ) from exc
    if mapped is None:
        raise ProblemError(
            404, "unknown-service", f"the mapping of {exchange.service!r} takes no status updates"
        )
    if not is_state(mapped.get("lifecycle")):
        raise ProblemError(
            422,
            "mapping-failed",
            f"{mapped.get('lifecycle')!r} is not a lifecycle state "
            f"({', '.join(s.value for s in Lifecycle)})",
        )
    return {k: v for k, v in mapped.items() if v is not None}


async def file_application(request: web.Request) -> web.Response:
    """A partner files an application for the local system: journal, then deliver."""
    broker = request.app[BROKER]
    pid = request.match_info["partner"]
    key = request.headers.get("Idempotency-Key")
    got = Received(request)
    try:
        partner = filing_partner(request, broker, pid)
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        service, application = _parse(body)
        exchange, created = await file_with(
            broker,
            partner,
            service,
            application,
            key,
            missing_key="send an Idempotency-Key header (1–255 visible ASCII characters), unique "
            "per application",
        )
    except ProblemError as exc:
        await refuse(request, broker, exc, key, got.body, got.size)
        raise
    return accepted(exchange, created)


def filing_partner(request: web.Request, broker: Any, pid: str) -> Partner:
    """The partner ``pid`` if it files applications here and the request carries one of its keys."""
    partner: Partner | None = broker.catalogue.partner(pid)
    if partner is None or partner.inbound is None or pid == LOCAL:
        raise ProblemError(404, "unknown-partner", f"no partner {pid!r} files applications here")
    _authenticate(request, partner.inbound, pid)
    return partner


async def file_with(
    broker: Any,
    partner: Partner,
    service: str,
    application: dict[str, object],
    key: str | None,
    *,
    missing_key: str,
) -> tuple[Exchange, bool]:
    """Check the service, map now, then journal the application (REST and SOAP intake share this).

    Raises ProblemError for every refusal, including a reused key (409); the caller journals it.
    """
    services = partner.inbound.services if partner.inbound is not None else {}
    if service not in services:
        raise ProblemError(
            404,
            "unknown-service",
            f"{partner.id!r} files no service {service!r} with us",
            services=sorted(services),
        )
    _check_mapping(broker, service, application)
    if not key or not KEY_RE.fullmatch(key):
        raise ProblemError(400, "missing-idempotency-key", missing_key)
    try:
        result: tuple[Exchange, bool] = await broker.submit(
            Submission(
                source=partner.id,
                partner=LOCAL,
                service=service,
                idempotency_key=key,
                application=application,
                direction=Direction.INBOUND,
            )
        )
    except IdempotencyConflict as exc:
        raise conflict(exc) from exc
    return result


def _check_mapping(broker: Any, service: str, application: dict[str, object]) -> None:
    """Map now: an application the local system could not take is refused at the door, whole."""
    mapping = broker.catalogue.mapping(LOCAL, service)
    if mapping is None:
        raise ProblemError(404, "unknown-service", f"no mapping for service {service!r}")
    try:
        mapping.map_request_checked(application)
    except MappingError as exc:
        problems = [p.to_dict() for p in exc.problems]
        raise ProblemError(
            422,
            "mapping-failed",
            f"{len(problems)} field(s) of the application cannot be taken; nothing was passed on",
            errors=problems,
        ) from exc


def _authenticate(request: web.Request, inbound: Inbound, pid: str) -> None:
    """A partner proves who it is by a client certificate (mutual TLS) or a Bearer key."""
    peer = _peer_certificate(request)
    if peer is not None:
        fingerprint = hashlib.sha256(peer).hexdigest()
        if any([hmac.compare_digest(fingerprint, c) for c in inbound.client_certs_sha256]):
            return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        if peer is not None:
            raise ProblemError(403, "forbidden", f"that client certificate is not one of {pid!r}'s")
        raise ProblemError(
            401,
            "unauthenticated",
            f"send 'Authorization: Bearer <key>' with {pid!r}'s key, or its client certificate",
        )
    if not key_matches(token, inbound.keys_sha256):
        raise ProblemError(403, "forbidden", f"that key is not one of {pid!r}'s")


def _peer_certificate(request: web.Request) -> bytes | None:
    """The DER bytes of the TLS client certificate, if the connection has one (verified by the CA)."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der


def _parse(body: bytes) -> tuple[str, dict[str, object]]:
    data = _json_object(body)
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
