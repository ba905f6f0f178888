"""The HTTP API: intake of applications and the view of their exchanges.

``POST /v1/exchanges`` answers 202 only after the journal commit; every refused request gets RFC 9457
problem details and a row in the journal's refusals, so nothing a system submitted vanishes unrecorded.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from federation.api import conform, intent, quickcheck
from federation.api.auth import Caller, authorize, caller_may, caller_of, source_caller
from federation.api.edge import (
    BROKER,
    EXCHANGE_ID_RE,
    Received,
    accepted,
    material_of,
    parsed,
    refuse,
)
from federation.api.problems import ProblemError
from federation.api.trail import record
from federation.config import ID_RE, LOCAL
from federation.domain.errors import (
    IdempotencyConflict,
    RequestRefused,
)
from federation.domain.models import Direction, Exchange, iso
from federation.domain.words import masked_problems, shown_error, shown_in
from federation.logging import MASK
from federation.runtime.broker import Broker, Submission
from federation.runtime.delivery import standing_errors
from federation.runtime.filing import KEY_RE, conflict, file_supplement

SUBMISSION_KEYS = {"source", "partner", "service", "application"}


async def submit(request: web.Request) -> web.Response:
    """Accept one application: validate, journal, answer 202 (or 200 for a repeat)."""
    broker = request.app[BROKER]
    key = intent.key_as_sent(request)
    got = Received(request)
    try:
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        dry = intent.dry_run(request)  # the body read first: a refusal keeps what was sent
        one = intent.idempotency_key(request)
        # a dry run is a question, not an application: it needs no key, and journals nothing
        sub = _parse_submission(body, one or ("dry-run" if dry else None), broker)
        await source_caller(request, broker, sub.source)
        if dry:
            errors = conform.format_errors(sub.application)
            return conform.answer(
                broker.catalogue, sub.partner, sub.service, sub.application, errors=errors
            )
        if not quickcheck.conforms(sub.application):  # the usual case answered in microseconds
            conform.conform(sub.application)
        exchange, created = await broker.submit(sub)
    except RequestRefused as exc:
        await got.refuse(broker, exc, key)
        raise
    except IdempotencyConflict as exc:
        problem = conflict(exc)
        await got.refuse(broker, problem, key)
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
    key = intent.key_as_sent(request)
    got = Received(request)
    try:
        parent = await broker.get(parent_id) if EXCHANGE_ID_RE.fullmatch(parent_id) else None
        if parent is None:
            raise ProblemError(404, "not-found", f"no exchange {parent_id}")
        if parent.direction is Direction.OUTBOUND:
            await source_caller(request, broker, parent.source)
        if parent.direction is Direction.INBOUND:
            raise ProblemError(
                409,
                "not-outbound",
                f"exchange {parent.id} was filed by {parent.source}, whose material it awaits "
                f"(POST /v1/partners/{parent.source}/applications/{{key}}/supplements)",
            )
        body = await got.read(broker.catalogue.config.broker.max_body_bytes)
        intent.only(request)  # no dry run here: any query would be a guess filed for real
        one = intent.idempotency_key(request)
        exchange, created = await file_supplement(broker, parent, material_of(body), one)
    except RequestRefused as exc:
        await got.refuse(broker, exc, key)
        raise
    return accepted(exchange, created)


def _parse_submission(body: bytes, key: str | None, broker: Broker) -> Submission:
    data = parsed(body)
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


async def get_exchange(request: web.Request) -> web.Response:
    """The exchange's state, attempts with outcome and timing, and receipt; its payloads with
    ``?include=payloads``: in clear to the source that filed it, and to support and operators
    with ``&reveal=true&reason=…`` (audited); masked for everyone else."""
    exchange_id = request.match_info["id"]
    if not EXCHANGE_ID_RE.fullmatch(exchange_id):
        raise ProblemError(404, "not-found", f"{exchange_id!r} is not an exchange id")
    broker = request.app[BROKER]
    exchange = await broker.get(exchange_id)
    caller = await _reader(request, broker, exchange)
    if exchange is None:
        raise ProblemError(404, "not-found", f"no exchange {exchange_id}")
    payloads = "payloads" in set(request.query.get("include", "").split(","))
    # reveal=true alone shows the partner's words in its errors (they can quote the application)
    asked = payloads or request.query.get("reveal") == "true"
    clear = (
        await _may_reveal(request, broker, caller, exchange) if asked else _owner(caller, exchange)
    )
    view = shown_view(exchange, payloads=payloads, clear=clear)
    await record(
        request,
        broker,
        who=caller.id,
        role=caller.role,
        action="reveal" if clear and asked else "show",
        target=exchange.id,
        reason=request.query.get("reason", ""),
        outcome="ok" if clear or not asked else "masked",
    )
    return web.Response(body=orjson.dumps(view), content_type="application/json")


def shown_view(exchange: Exchange, *, payloads: bool, clear: bool) -> dict[str, Any]:
    """The exchange as a reader sees it: with payloads if asked, masked unless ``clear``
    (application, mapped request and the transcripts but for the keys kept; the partner's words
    in every error)."""
    view = exchange_view(exchange, payloads=payloads, clear=clear)
    if payloads and not clear:
        view["application"], view["mapped"] = masked(view["application"]), masked(view["mapped"])
    if not clear:  # a transcript is payload, asked for or not: the reply can quote the applicant
        view["attempts"] = masked(view["attempts"], keep=TRANSCRIPT_KEPT)
    return view


async def _reader(request: web.Request, broker: Broker, exchange: Exchange | None) -> Caller:
    """The caller allowed to read ``exchange``: its own source, or staff who may show."""
    try:
        caller = caller_of(request, broker)
        own = exchange is not None and exchange.direction is Direction.OUTBOUND
        if caller is not None and own and exchange is not None and caller.owns(exchange.source):
            return caller
    except RequestRefused:
        pass  # a key that is no one's: refused, journalled and audited just below
    return await authorize(request, broker, "show")


async def _may_reveal(
    request: web.Request, broker: Broker, caller: Caller, exchange: Exchange
) -> bool:
    """Whether ``caller`` sees this exchange's payloads in clear (see :func:`get_exchange`)."""
    if _owner(caller, exchange):
        return True
    if request.query.get("reveal") != "true":
        return False
    reason = request.query.get("reason", "").strip()
    if not caller_may(caller, "reveal") or not reason:
        problem = ProblemError(
            403,
            "reveal-refused",
            f"principal {caller.id!r} ({caller.role}) may not reveal personal data"
            if reason
            else "reveal=true needs a reason=… (it is audited)",
        )
        await refuse(request, broker, problem, None, b"", 0)
        await record(
            request,
            broker,
            who=caller.id,
            role=caller.role,
            action="refused:reveal",
            target=exchange.id,
            outcome=problem.code,
        )
        raise problem
    return True


def _owner(caller: Caller, exchange: Exchange) -> bool:
    """Its own application; or an unguarded broker's own machine: in clear without asking."""
    return caller.owns(exchange.source) or caller.role == "local"


# What is kept readable of an attempt when payloads are masked: timing and outcome, not content.
TRANSCRIPT_KEPT = frozenset(
    {"number", "started_at", "finished_at", "outcome", "duration_ms", "error"}
)


def masked(value: Any, keep: frozenset[str] = frozenset()) -> Any:
    """``value`` with every text and number masked and its shape kept (keys under ``keep`` stay
    as they are). Not the log's pattern masking: a mapped request names fields in a partner's
    own words, so a name or number under any key may be personal."""
    if isinstance(value, dict):
        return {k: v if k in keep else masked(v, keep) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, keep) for v in value]
    if value is None or isinstance(value, bool):
        return value
    return MASK


def exchange_view(
    exchange: Exchange, *, payloads: bool = False, clear: bool = False
) -> dict[str, Any]:
    """The JSON form of an exchange (payloads only on request: they hold personal data; the
    partner's words in its errors masked unless ``clear``).

    A delivered exchange shows ``last_error: null`` and the error a later delivery superseded as
    ``previous_error`` (every attempt's own error is in ``attempts``)."""
    last_error, previous_error = standing_errors(exchange)
    attempts = [a.to_dict() for a in exchange.attempt_history()]
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
        "attempts": [shown_in(a, clear=clear, mask=MASK) for a in attempts],
        "receipt": exchange.receipt,
        "last_error": shown_error(last_error, clear=clear, mask=MASK),
        "previous_error": shown_error(previous_error, clear=clear, mask=MASK),
        "mapping_versions": exchange.mapping_versions,
        "warnings": _warnings(exchange) if clear else masked_problems(_warnings(exchange), MASK),
        "lifecycle": exchange.lifecycle() if clear else _masked_notes(exchange.lifecycle()),
        "events": [{"kind": e.kind, "at": iso(e.at)} for e in exchange.events],
        "links": {"self": f"/v1/exchanges/{exchange.id}"},
    }
    if payloads:
        view["application"] = exchange.application
        view["mapped"] = exchange.mapped
    return view


def _masked_notes(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lifecycle steps with the handling side's notes masked (``请补充住址证明``: free text about
    the application, as a partner's refusal is); a resubmission's note, ours, kept."""
    return [{**s, "note": MASK} if "note" in s and "supplement" not in s else s for s in steps]


def _warnings(exchange: Exchange) -> list[Any]:
    """The mapping warnings of the latest mapping (odd but accepted values)."""
    for event in reversed(exchange.events):
        if event.kind == "mapped":
            return list(event.data.get("warnings", []))
    return []
