"""The support staff's API: find exchanges and replay them (``GET /v1/exchanges``, ``POST /v1/replays``).

The same operations are in the CLI (``tongban journal search``, ``tongban replay``); both build a
:class:`replay.journal.Query` through :func:`query_from` so a filter means the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from federation.api.auth import Caller, authorize
from federation.api.edge import BROKER, EXCHANGE_ID_RE, Received, parsed, refuse, storable
from federation.api.problems import ProblemError
from federation.api.trail import record
from federation.domain.errors import RequestRefused
from federation.domain.models import Exchange, Lifecycle, State, iso
from federation.domain.storable import unstorable
from federation.domain.words import shown_error
from federation.logging import MASK
from federation.runtime.broker import Broker
from replay.journal import Query
from replay.service import Mode, Plan, ReplayService, Result, Skip

FILTERS = (
    "state",
    "lifecycle",
    "partner",
    "service",
    "source",
    "since",
    "until",
    "error",
    "id",
    "key",
    "applicant",
    "before",
    "limit",
)


class BadQuery(ValueError):
    """A filter value that cannot be understood."""


def parse_time(text: str) -> float:
    """ISO 8601 (``2026-11-28``, ``2026-11-28T09:00+08:00``) or epoch seconds → epoch seconds."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise BadQuery(f"{text!r} is not a time (ISO 8601 or epoch seconds)")
        return seconds
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"{text!r} is not a time (ISO 8601, e.g. 2026-11-28T09:00+08:00)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo("Asia/Shanghai"))  # the federation's wall clock
    return dt.timestamp()


def query_from(
    params: Mapping[str, str],
    *,
    applicant_ref: Callable[[str], bytes | None],
    with_supplement_of: bool = True,
) -> Query:
    """Build a Query from filter names (API query parameters or CLI options); its results say
    which exchange each supplements (补正) unless ``with_supplement_of`` is False."""
    unknown = set(params) - set(FILTERS)
    if unknown:
        raise BadQuery(
            f"unknown filter(s): {', '.join(sorted(unknown))}; known: {', '.join(FILTERS)}"
        )
    if (name := unstorable(params)) is not None:
        raise BadQuery(
            f"{name}: holds a NUL character or a lone surrogate, which no search can match"
        )
    states = tuple(s for s in params.get("state", "").split(",") if s)
    lifecycle = tuple(s for s in params.get("lifecycle", "").split(",") if s)
    known = {x.value for x in Lifecycle}
    for s in lifecycle:
        if s not in known:
            raise BadQuery(f"{s!r} is not a lifecycle state ({', '.join(sorted(known))})")
    for s in states:
        if s not in {x.value for x in State}:
            raise BadQuery(f"{s!r} is not a state ({', '.join(x.value for x in State)})")
    ref = None
    if params.get("applicant"):
        ref = applicant_ref(params["applicant"])
        if ref is None:
            raise BadQuery(
                "search by applicant is not configured (partners.yaml search.applicant_fields)"
            )
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        raise BadQuery("limit must be a whole number") from None
    if not 1 <= limit <= 1000:
        raise BadQuery("limit must be between 1 and 1000")
    before = params.get("before")
    if before and not EXCHANGE_ID_RE.fullmatch(before):
        raise BadQuery(f"before: {before[:40]!r} is not a page cursor (an exchange id)")
    return Query(
        states=states,
        lifecycle=lifecycle,
        partner=params.get("partner"),
        service=params.get("service"),
        source=params.get("source"),
        since=parse_time(params["since"]) if params.get("since") else None,
        until=parse_time(params["until"]) if params.get("until") else None,
        error=params.get("error") or None,
        exchange_id=params.get("id"),
        idempotency_key=params.get("key"),
        applicant_ref=ref,
        before=before or None,
        limit=limit,
        with_supplement_of=with_supplement_of,
    )


def summary(ex: Exchange, *, clear: bool = False) -> dict[str, Any]:
    """One line of a search result: the partner's words in its last error masked unless
    ``clear`` (a search reveals nothing: opening the exchange with a reason does)."""
    last_error = shown_error(ex.last_error, clear=clear, mask=MASK) or {}
    return {
        "id": ex.id,
        "supplement_of": ex.supplement_of,  # the exchange this one is a correction round (补正) of
        "state": ex.state.value,
        "lifecycle": ex.lifecycle_state,
        "partner": ex.target,
        "service": ex.service,
        "source": ex.source,
        "idempotency_key": ex.idempotency_key,
        "attempts": ex.attempts,
        "created_at": iso(ex.created_at),
        "updated_at": iso(ex.updated_at),
        "receipt_number": (ex.receipt or {}).get("receipt_number"),
        "last_error": last_error.get("message"),
        "links": {"self": f"/v1/exchanges/{ex.id}"},
    }


def setup(app: web.Application) -> None:
    """Register the support routes on the broker's app."""
    app.router.add_get("/v1/exchanges", search)
    app.router.add_post("/v1/replays", replays)


def audited_filters(
    filters: Mapping[str, Any], applicant_ref: Callable[[str], bytes | None]
) -> dict[str, str]:
    """Filters as the audit trail keeps them: an applicant's identifier only as its keyed hash.

    The trail says which applicant was looked for (the same person gives the same reference, so
    an auditor can follow one person's searches) without holding the ID number itself.
    """
    kept = {k: str(v) for k, v in filters.items()}
    if kept.get("applicant"):
        ref = applicant_ref(kept["applicant"])
        kept["applicant"] = f"ref:{ref.hex()[:16]}" if ref is not None else MASK
    return kept


async def search(request: web.Request) -> web.Response:
    """``GET /v1/exchanges``: exchanges matching the query's filters, newest first, paged."""
    broker = request.app[BROKER]
    caller = await authorize(request, broker, "search")
    try:
        query = query_from(dict(request.query), applicant_ref=broker.applicant_ref)
    except BadQuery as exc:
        raise ProblemError(400, "invalid-query", str(exc)) from exc
    found = await broker.journal.search(query)
    await record(
        request,
        broker,
        who=caller.id,
        role=caller.role,
        action="search",
        target=urlencode(audited_filters(request.query, broker.applicant_ref)),
    )
    local = caller.role == "local"  # an unguarded broker's own machine, as for one exchange
    body: dict[str, Any] = {"exchanges": [summary(ex, clear=local) for ex in found]}
    if len(found) == query.limit:
        params = dict(request.query)
        params["before"] = found[-1].id
        body["next"] = f"/v1/exchanges?{urlencode(params)}"
    return web.Response(body=orjson.dumps(body), content_type="application/json")


# No "by": who replays is the acting principal, never a value the client types.
REPLAY_FIELDS = frozenset({"mode", "reason", "exchange_id", "filter", "dry_run", "confirm"})


async def replays(request: web.Request) -> web.Response:
    """``POST /v1/replays``: plan a replay of one exchange or a filter; run it unless a dry run.

    Every refusal is journalled: one of the caller's key or role by :func:`authorize`, any later
    one (the body, an unknown exchange, no reason, no confirmation) by :func:`journal_refusal`."""
    broker = request.app[BROKER]
    caller = await authorize(request, broker, "replay")
    got = Received(request, kept=False)  # a reason and filters can name a person: size only
    data: dict[str, Any] = {}
    try:
        # read as intake reads: within the body limit, JSON, decompressed (or refused) by the edge
        data = replay_request(await got.read(broker.catalogue.config.broker.max_body_bytes))
        body = await _replayed(request, broker, caller, data)
    except RequestRefused as exc:
        target = audited_target(asked_filters(data), broker.applicant_ref)
        await journal_refusal(request, broker, caller, exc, target=target, size=got.size)
        raise
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _replayed(
    request: web.Request, broker: Broker, caller: Caller, data: dict[str, Any]
) -> dict[str, Any]:
    """The answer to a replay request read whole: its plan (a dry run), or what it replayed."""
    mode, filters = replay_mode(data), replay_filters(data)
    try:
        query = query_from(
            {k: str(v) for k, v in filters.items()},
            applicant_ref=broker.applicant_ref,
            with_supplement_of=False,  # a plan needs none (one read more per exchange)
        )
    except BadQuery as exc:
        raise ProblemError(400, "invalid-query", str(exc)) from exc
    service = ReplayService(broker.journal)
    plan = await service.plan(query, mode)
    if "id" in filters:
        found_one(filters["id"], plan)
    view: dict[str, Any] = {
        "mode": mode.value,
        "would_replay": [ex.id for ex in plan.take],
        "would_skip": [skipped(ex.id, why, plan.codes) for ex, why in plan.skip],
    }
    if data.get("dry_run"):
        return view
    reason = str(data.get("reason") or "").strip()
    if not reason:
        raise ProblemError(400, "invalid-request", "a replay needs a reason")
    if "id" not in filters and data.get("confirm") is not True:
        raise ProblemError(
            400,
            "confirmation-required",
            f"this bulk replay would replay {len(plan.take)} exchange(s): send 'confirm': true "
            "(or dry_run to look first)",
            **view,
        )
    result = await service.run(plan, reason=reason, by=caller.id)
    await record(
        request,
        broker,
        who=caller.id,
        role=caller.role,
        action="replay",
        target=",".join(result.replayed)
        or orjson.dumps(audited_filters(filters, broker.applicant_ref)).decode(),
        reason=reason,
        outcome=replay_outcome(result),
    )
    broker.worker.poke()
    return {
        "batch": result.batch,
        "replayed": result.replayed,
        "skipped": [skipped(i, w, result.codes) for i, w in result.skipped],
    }


def skipped(xid: str, why: str, codes: Mapping[str, Skip]) -> dict[str, str]:
    """One exchange a replay leaves out: its id, why in English (``why``, as it always was) and
    the stable slug of why (``code``: ``replay.service.Skip``), for a program to branch on."""
    return {"id": xid, "why": why, "code": codes[xid].value}


def found_one(xid: str, plan: Plan) -> None:
    """Refuse (404 not-found) a replay of one exchange the journal does not hold; the detail
    quotes the id only when it is one (a value typed there by mistake may be an ID number)."""
    if plan.take or plan.skip:
        return
    if EXCHANGE_ID_RE.fullmatch(xid):
        raise ProblemError(404, "not-found", f"no exchange {xid}")
    raise ProblemError(404, "not-found", "exchange_id is not an exchange id (26 characters)")


def replay_outcome(result: Result) -> str:
    """A replay's outcome in the audit trail: ``skipped`` when it replayed nothing it asked for
    (the exchange was not replayable, or moved since it was planned), else ``ok``."""
    return "skipped" if result.skipped and not result.replayed else "ok"


def asked_filters(data: Mapping[str, Any]) -> dict[str, Any]:
    """What a replay request asked to replay, as far as it can be read (never refusing): the
    ``filter`` object's entries and ``exchange_id`` as the ``id`` filter."""
    raw = data.get("filter")
    asked = dict(raw) if isinstance(raw, dict) else {}
    if data.get("exchange_id"):
        asked["id"] = data["exchange_id"]
    return asked


def audited_target(asked: Mapping[str, Any], applicant_ref: Callable[[str], bytes | None]) -> str:
    """What a refused replay asked for, as the audit trail keeps it: one exchange by its id, else
    the filters as JSON. Only filters that exist are kept, an applicant's identifier as its keyed
    reference (``audited_filters``) and an id or cursor that is not an exchange id masked: a value
    typed in the wrong place may be someone's ID number."""
    kept: dict[str, Any] = {}
    for name, value in asked.items():
        if name not in FILTERS:
            continue
        text = storable(value if isinstance(value, str) else orjson.dumps(value).decode())
        masked = name in ("id", "before") and not EXCHANGE_ID_RE.fullmatch(text)
        kept[name] = MASK if masked else text
    if set(kept) == {"id"}:
        return storable(str(kept["id"]))
    return storable(orjson.dumps(audited_filters(kept, applicant_ref)).decode()) if kept else ""


async def journal_refusal(
    request: web.Request,
    broker: Broker,
    caller: Caller,
    exc: RequestRefused,
    *,
    target: str,
    size: int,
) -> None:
    """Keep a refused replay (the API's or the console's) in the journal's refusals, without its
    body (a reason and filters can name a person), and in the audit trail as ``refused:replay``:
    who asked, for what (``target``, see :func:`audited_target`) and the problem's type."""
    await refuse(request, broker, exc, None, b"", size)
    await record(
        request,
        broker,
        who=caller.id,
        role=caller.role,
        action="refused:replay",
        target=target,
        outcome=exc.code,
    )


def replay_request(body: bytes) -> dict[str, Any]:
    """The replay request's JSON object, with no field it does not know, read as intake reads:
    a key named twice in one object (two modes, two exchange_ids) is 400 malformed-json naming
    the key's path, never whichever value the parser kept."""
    data = parsed(body)
    if not isinstance(data, dict):
        raise ProblemError(400, "invalid-request", "body must be a JSON object")
    extra = set(data) - REPLAY_FIELDS
    if extra:
        raise ProblemError(400, "invalid-request", f"unknown field(s): {', '.join(sorted(extra))}")
    return data


def replay_mode(data: dict[str, Any]) -> Mode:
    try:
        return Mode(str(data.get("mode")))
    except ValueError:
        raise ProblemError(400, "invalid-request", "mode must be 'resend' or 'remap'") from None


def replay_filters(data: dict[str, Any]) -> dict[str, Any]:
    """The filter names and values a replay selects by (``exchange_id`` is the ``id`` filter)."""
    raw_filter = data.get("filter") or {}
    if not isinstance(raw_filter, dict):
        raise ProblemError(
            400, "invalid-request", "filter must be an object of filter names and values"
        )
    filters = dict(raw_filter)
    if data.get("exchange_id"):
        filters["id"] = str(data["exchange_id"])
    if not filters:
        raise ProblemError(400, "invalid-request", "give an exchange_id or a filter")
    return filters
