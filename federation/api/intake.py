"""The HTTP API: intake of applications and the view of their exchanges.

``POST /v1/exchanges`` answers 202 only after the journal commit; every refused request gets RFC 9457
problem details and a row in the journal's refusals, so nothing a system submitted vanishes unrecorded.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from federation.api import support
from federation.api.problems import ProblemError, problem_response
from federation.config import ID_RE, LOCAL
from federation.domain.errors import (
    ConfigError,
    IdempotencyConflict,
    JournalError,
    JournalUnavailable,
    MappingError,
)
from federation.domain.models import Direction, Exchange, iso
from federation.logging import get_logger
from federation.runtime.broker import Broker, Submission
from replay.journal import Query, Refusal

BROKER: web.AppKey[Broker] = web.AppKey("broker", Broker)
KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
EXCHANGE_ID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
JSON = frozenset({"application/json"})
SUBMISSION_KEYS = {"source", "partner", "service", "application"}
_log = get_logger(component="intake")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(broker: Broker) -> web.Application:
    """The aiohttp application serving the broker's API."""
    limit = broker.catalogue.config.broker.max_body_bytes
    # Our own limit check answers 413 with problem details; aiohttp's is only a backstop.
    app = web.Application(middlewares=[_problems], client_max_size=limit + 1024)
    app[BROKER] = broker
    app.router.add_post("/v1/exchanges", submit)
    app.router.add_get("/v1/exchanges/{id}", get_exchange)
    app.router.add_post("/v1/exchanges/{id}/supplements", supplement)
    app.router.add_get("/v1/partners", list_partners)
    app.router.add_get("/v1/stats", stats)
    app.router.add_post("/v1/admin/reload", reload)
    support.setup(app, BROKER)
    from federation.api import inbound  # imports this module: registered once the app exists

    inbound.setup(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as exc:
        return problem_response(
            exc.status, exc.slug, exc.detail, instance=request.path, **exc.extra
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        slug = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}.get(
            exc.status, "http-error"
        )
        return problem_response(exc.status, slug, exc.reason, instance=request.path)
    except JournalUnavailable as exc:
        _log.error("journal_unavailable", error=str(exc))
        return problem_response(
            503,
            "journal-unavailable",
            "the journal is unavailable; retry later",
            instance=request.path,
        )
    except Exception:
        _log.exception("request_failed", path=request.path)
        return problem_response(
            500,
            "internal-error",
            "an unexpected error occurred; it was logged",
            instance=request.path,
        )


async def submit(request: web.Request) -> web.Response:
    """Accept one application: validate, journal, answer 202 (or 200 for a repeat)."""
    broker = request.app[BROKER]
    key = request.headers.get("Idempotency-Key")
    got = Received(request)
    try:
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        sub = _parse_submission(body, key, broker)
        keys, who = allowed_keys(broker, sources=(sub.source,), operator=False)
        if keys:
            bearer_check(request, keys, who)
        exchange, created = await broker.submit(sub)
    except ProblemError as exc:
        await refuse(request, broker, exc, key, got.body, got.size)
        raise
    except IdempotencyConflict as exc:
        problem = conflict(exc)
        await refuse(request, broker, problem, key, got.body, got.size)
        raise problem from exc
    return accepted(exchange, created)


async def supplement(request: web.Request) -> web.Response:
    """A correction round (补正): the originating system sends the material the partner asked for.

    Accepted only while the partner's latest word is ``correction_required``; the material goes
    to the partner as a follow-up message of the same application (its own exchange, delivered
    with the same guarantees), after which the application counts as submitted again.
    """
    broker = request.app[BROKER]
    parent_id = request.match_info["id"]
    key = request.headers.get("Idempotency-Key")
    got = Received(request)
    try:
        parent = await broker.get(parent_id) if EXCHANGE_ID_RE.fullmatch(parent_id) else None
        if parent is None:
            raise ProblemError(404, "not-found", f"no exchange {parent_id}")
        keys, who = allowed_keys(broker, sources=(parent.source,), operator=False)
        if keys and parent.direction is Direction.OUTBOUND:
            bearer_check(request, keys, who)
        if parent.direction is Direction.INBOUND:
            raise ProblemError(
                409,
                "not-outbound",
                f"exchange {parent.id} was filed by {parent.source}, whose material it awaits "
                f"(POST /v1/partners/{parent.source}/applications/{{key}}/supplements)",
            )
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        exchange, created = await file_supplement(broker, parent, material_of(body), key)
    except ProblemError as exc:
        await refuse(request, broker, exc, key, got.body, got.size)
        raise
    return accepted(exchange, created)


async def file_supplement(
    broker: Broker,
    parent: Exchange,
    material: dict[str, Any],
    key: str | None,
    *,
    map_now: bool = False,
) -> tuple[Exchange, bool]:
    """Journal a correction round's material as a follow-up of ``parent`` (both directions).

    Refused (ProblemError) unless the latest word on ``parent`` is ``correction_required`` (a
    repeat of a supplement already filed under ``key`` is answered like any repeat), its service
    takes supplements, and ``key`` is a valid key. ``map_now``: refuse with 422 material the
    ``supplement:`` section cannot map (a partner's, which must not reach the local system
    half-mapped). The follow-up's application is ``{"material", "original"}``.
    """
    mapping = broker.catalogue.mapping(parent.target, parent.service)
    if mapping is None or mapping.supplement is None:
        raise ProblemError(
            404, "unknown-service", f"{parent.target!r} takes no supplements for this service"
        )
    if not key or not KEY_RE.fullmatch(key):
        raise ProblemError(
            400, "missing-idempotency-key", "send an Idempotency-Key that is unique per supplement"
        )
    earlier = await broker.journal.search(
        Query(partner=parent.target, source=parent.source, idempotency_key=key, limit=1)
    )
    # (search results come without events, which is where supplement_of is kept)
    first = await broker.journal.get(earlier[0].id) if earlier else None
    repeat = first is not None and first.supplement_of == parent.id
    latest = parent.lifecycle_state or parent.state.value
    if not repeat and latest != "correction_required":
        raise ProblemError(
            409,
            "no-correction-requested",
            f"exchange {parent.id} is {latest}: {parent.target} has not asked for more material",
        )
    application = {"material": material, "original": parent.original()}
    if map_now:
        try:
            mapping.supplement.apply_checked(application)
        except MappingError as exc:
            problems = [p.to_dict() for p in exc.problems]
            raise ProblemError(
                422,
                "mapping-failed",
                f"{len(problems)} field(s) of the material cannot be taken; nothing was passed on",
                errors=problems,
            ) from exc
    try:
        return await broker.submit(
            Submission(
                source=parent.source,
                partner=parent.target,
                service=parent.service,
                idempotency_key=key,
                # the material and how the partner knows the application it completes, kept
                # with the follow-up so that a replay sends the same
                application=application,
                supplement_of=parent.id,
                direction=parent.direction,
            )
        )
    except IdempotencyConflict as exc:
        raise conflict(exc) from exc


def material_of(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProblemError(400, "malformed-json", f"body is not valid JSON: {exc}") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("material"), dict)
        or set(data) != {"material"}
    ):
        raise ProblemError(400, "invalid-request", 'send {"material": {…}}: the requested material')
    material: dict[str, Any] = data["material"]
    return material


def conflict(exc: IdempotencyConflict) -> ProblemError:
    """409: the key names another application."""
    return ProblemError(
        409,
        "idempotency-conflict",
        f"Idempotency-Key was already used for exchange {exc.exchange_id} with a different "
        "application; use a new key for a new application",
        exchange_id=exc.exchange_id,
    )


def accepted(exchange: Exchange, created: bool) -> web.Response:
    """202 (new) or 200 (a repeat), with the exchange's Location: sent after the journal commit."""
    location = f"/v1/exchanges/{exchange.id}"
    payload = {
        "id": exchange.id,
        "state": exchange.state.value,
        "created": created,
        "links": {"self": location},
    }
    return web.Response(
        status=202 if created else 200,
        body=orjson.dumps(payload),
        content_type="application/json",
        headers={"Location": location},
    )


async def read_body(
    request: web.Request, limit: int, media_types: frozenset[str] = JSON
) -> tuple[bytes, int]:
    """Read the body within the limit (kept even when refused), then check its media type."""
    if request.content_length is not None and request.content_length > limit:
        raise ProblemError(
            413,
            "body-too-large",
            f"body is {request.content_length} bytes; the limit is {limit}",
            limit=limit,
        )
    if request.content_length is not None:
        body = await request.read()  # announced and within the limit
        size = len(body)
    else:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise ProblemError(
                    413,
                    "body-too-large",
                    f"body exceeds the limit of {limit} bytes",
                    limit=limit,
                    received_bytes=size,
                )
            chunks.append(chunk)
        body = b"".join(chunks)
    ctype = request.headers.get("Content-Type", "")
    if ctype.split(";")[0].strip().lower() not in media_types:
        raise Refused(
            ProblemError(
                415,
                "unsupported-media-type",
                f"send the application as {' or '.join(sorted(media_types))}, "
                f"not {ctype or 'no type'!r}",
            ),
            body,
            size,
        )
    return body, size


class Received:
    """A request body as far as it was read: kept for the refusal record even when refused."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.body = b""
        self.size = request.content_length or 0

    async def read(self, limit: int, media_types: frozenset[str] = JSON) -> bytes:
        """The body within ``limit``; a refusal raises its ProblemError, the body kept here."""
        try:
            self.body, self.size = await read_body(self.request, limit, media_types)
        except Refused as refused:
            self.body, self.size = refused.body, refused.size
            raise refused.problem from None
        return self.body


class Refused(Exception):
    """A refusal raised after the body was read, carrying the body for the journal."""

    def __init__(self, problem: ProblemError, body: bytes, size: int) -> None:
        super().__init__(problem.detail)
        self.problem, self.body, self.size = problem, body, size


def _parse_submission(body: bytes, key: str | None, broker: Broker) -> Submission:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProblemError(400, "malformed-json", f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProblemError(400, "invalid-request", "body must be a JSON object")
    errors: list[dict[str, str]] = []
    for name in ("source", "partner", "service"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            errors.append({"path": name, "message": "required text"})
    if not isinstance(data.get("application"), dict):
        errors.append({"path": "application", "message": "required JSON object"})
    for extra in sorted(set(data) - SUBMISSION_KEYS):
        errors.append({"path": extra, "message": "unknown field"})
    if errors:
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
        raise ProblemError(400, "invalid-request", detail, errors=errors)
    if not key:
        raise ProblemError(
            400,
            "missing-idempotency-key",
            "send an Idempotency-Key header that is unique per application",
        )
    if not KEY_RE.fullmatch(key):
        raise ProblemError(
            400, "missing-idempotency-key", "Idempotency-Key must be 1–255 visible ASCII characters"
        )
    catalogue = broker.catalogue
    source, partner, service = data["source"], data["partner"], data["service"]
    if not ID_RE.fullmatch(source) or source not in catalogue.config.sources:
        raise ProblemError(
            400, "unknown-source", f"source {source!r} is not declared in partners.yaml 'sources'"
        )
    p = catalogue.partner(partner) if partner != LOCAL else None
    if p is None:
        raise ProblemError(
            404,
            "unknown-partner",
            f"no partner {partner!r} in partners.yaml",
            partners=sorted(catalogue.config.partners),
        )
    if service not in p.services:
        raise ProblemError(
            404,
            "unknown-service",
            f"partner {partner!r} offers no service {service!r}",
            services=sorted(p.services),
        )
    return Submission(
        source=source,
        partner=partner,
        service=service,
        idempotency_key=key,
        application=data["application"],
    )


def key_matches(token: str, digests: frozenset[str] | set[str]) -> bool:
    """Is ``token`` one of the keys whose SHA-256 digests these are? (Constant time for each, and
    every one compared: no timing hint about which one almost matched.)"""
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    return any([hmac.compare_digest(digest, k) for k in digests])


def bearer_check(request: web.Request, allowed: frozenset[str] | set[str], who: str) -> None:
    """Refuse (401/403) unless the request's ``Authorization: Bearer`` key is one of ``allowed``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "unauthenticated", f"send 'Authorization: Bearer <key>' ({who})")
    if not key_matches(token, allowed):
        raise ProblemError(403, "forbidden", f"that key is not {who}'s")


def allowed_keys(
    broker: Broker, *, sources: tuple[str, ...] = (), operator: bool = True
) -> tuple[frozenset[str], str]:
    """The keys that may do something: those of the named sources and, if ``operator``, the
    operators'; with a description for messages. Empty when none of them declares keys: the
    API is then open to whoever reaches it, as before keys existed."""
    config = broker.catalogue.config
    keys: set[str] = set()
    who: list[str] = []
    for sid in sources:
        src = config.sources.get(sid)
        if src is not None and src.keys_sha256:
            keys |= src.keys_sha256
            who.append(f"source {sid}")
    if operator and config.broker.operator_keys_sha256:
        keys |= config.broker.operator_keys_sha256
        who.append("an operator")
    return frozenset(keys), " or ".join(who)


async def authorize(
    request: web.Request, broker: Broker, *, sources: tuple[str, ...] = (), operator: bool = True
) -> None:
    """:func:`bearer_check` against :func:`allowed_keys`; a refusal is journalled."""
    keys, who = allowed_keys(broker, sources=sources, operator=operator)
    if not keys:
        return
    try:
        bearer_check(request, keys, who)
    except ProblemError as exc:
        await refuse(request, broker, exc, None, b"", 0)
        raise


async def refuse(
    request: web.Request, broker: Broker, exc: ProblemError, key: str | None, body: bytes, size: int
) -> None:
    refusal = Refusal(
        at=time.time(),
        remote=request.remote or "",
        method=request.method,
        path=request.path,
        status=exc.status,
        problem=exc.slug,
        detail=exc.detail,
        idempotency_key=key,
        body=body,
        body_bytes=size,
    )
    try:
        await broker.journal.refuse(refusal)
    except JournalError as err:
        _log.error("refusal_not_journalled", error=str(err), problem=exc.slug)
    _log.info("intake_refused", status=exc.status, problem=exc.slug)


async def get_exchange(request: web.Request) -> web.Response:
    """The exchange's state, attempts with outcome and timing, and receipt."""
    exchange_id = request.match_info["id"]
    if not EXCHANGE_ID_RE.fullmatch(exchange_id):
        raise ProblemError(404, "not-found", f"{exchange_id!r} is not an exchange id")
    broker = request.app[BROKER]
    exchange = await broker.get(exchange_id)
    if exchange is None:
        await authorize(request, broker)  # no hint to the unauthorised about what exists
        raise ProblemError(404, "not-found", f"no exchange {exchange_id}")
    own = (exchange.source,) if exchange.direction is Direction.OUTBOUND else ()
    await authorize(request, broker, sources=own)
    include = set(request.query.get("include", "").split(","))
    return web.Response(
        body=orjson.dumps(exchange_view(exchange, payloads="payloads" in include)),
        content_type="application/json",
    )


def exchange_view(exchange: Exchange, *, payloads: bool = False) -> dict[str, Any]:
    """The JSON form of an exchange (payloads only on request: they hold personal data)."""
    view: dict[str, Any] = {
        "id": exchange.id,
        "direction": exchange.direction.value,
        "supplement_of": exchange.supplement_of,
        "source": exchange.source,
        "partner": exchange.target,
        "service": exchange.service,
        "idempotency_key": exchange.idempotency_key,
        "state": exchange.state.value,
        "created_at": iso(exchange.created_at),
        "updated_at": iso(exchange.updated_at),
        "next_attempt_at": iso(exchange.next_attempt_at),
        "attempts": [a.to_dict() for a in exchange.attempt_history()],
        "receipt": exchange.receipt,
        "last_error": exchange.last_error,
        "mapping_versions": exchange.mapping_versions,
        "warnings": _warnings(exchange),
        "lifecycle": exchange.lifecycle(),
        "events": [{"kind": e.kind, "at": iso(e.at)} for e in exchange.events],
        "links": {"self": f"/v1/exchanges/{exchange.id}"},
    }
    if payloads:
        view["application"] = exchange.application
        view["mapped"] = exchange.mapped
    return view


def _warnings(exchange: Exchange) -> list[Any]:
    """The mapping warnings of the latest mapping (odd but accepted values)."""
    for event in reversed(exchange.events):
        if event.kind == "mapped":
            return list(event.data.get("warnings", []))
    return []


async def list_partners(request: web.Request) -> web.Response:
    """Partners and their service items as configured."""
    broker = request.app[BROKER]
    await authorize(request, broker)
    config = broker.catalogue.config
    out = [
        {
            **broker.worker.partner_status(p.id),
            "id": p.id,
            "name": {"zh": p.names.zh, "en": p.names.en},
            "region": {"code": p.region.code, "iso": p.region.iso},
            "protocol": p.protocol,
            "concurrency": p.concurrency,
            "services": [
                {"code": s.code, "name": {"zh": s.names.zh, "en": s.names.en} if s.names else None}
                for s in p.services.values()
            ],
        }
        for p in config.partners.values()
    ]
    return web.Response(body=orjson.dumps({"partners": out}), content_type="application/json")


async def stats(request: web.Request) -> web.Response:
    """Exchanges per state and work in hand."""
    broker = request.app[BROKER]
    await authorize(request, broker)
    counts = dict(await broker.journal.counts())
    body = {
        "exchanges": counts,
        "total": sum(counts.values()),
        "in_flight": broker.worker.in_flight,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def reload(request: web.Request) -> web.Response:
    """Reload partners.yaml, mappings and code tables; refused with every problem if invalid."""
    broker = request.app[BROKER]
    await authorize(request, broker)
    try:
        catalogue = await broker.reload()
    except ConfigError as exc:
        errors = [p.to_dict() | {"text": str(p)} for p in exc.problems]
        raise ProblemError(
            422,
            "invalid-configuration",
            f"{len(errors)} problem(s); the configuration in force is unchanged",
            errors=errors,
        ) from exc
    body = {
        "status": "reloaded",
        "partners": len(catalogue.config.partners),
        "mappings": len({m.path for m in catalogue.mappings.values()}),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    """The process is up."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to accept applications: catalogue loaded and the journal writable."""
    broker = request.app[BROKER]
    try:
        await broker.journal.ping()
    except JournalError as exc:
        raise ProblemError(503, "not-ready", f"journal: {exc}") from exc
    return web.json_response({"status": "ready", "partners": len(broker.catalogue.config.partners)})
