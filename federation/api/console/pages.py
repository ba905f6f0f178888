"""The console's reading pages: overview, exchanges (search) and one exchange (with reveal).

Each goes through the API's own pieces: ``query_from`` for filters, ``shown_view`` (masking)
for an exchange, ``record`` for the audit trail, the same grants for who may."""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

from federation.api.console import i18n, views
from federation.api.console.access import check_csrf, require
from federation.api.console.render import ZONE_COOKIE, language_of, render
from federation.api.edge import BROKER, EXCHANGE_ID_RE, refuse_without_body
from federation.api.intake import shown_view
from federation.api.problems import ProblemError
from federation.api.support import FILTERS, BadQuery, query_from
from federation.api.trail import audit_refusal, record
from federation.domain.models import Exchange, Lifecycle, State, canonical_json
from replay.rules import REPLAYABLE

PAGE = 50
COUNTS = web.AppKey("console_counts", views.Counts)
SEARCH_FIELDS = tuple(f for f in FILTERS if f not in ("limit",))


async def overview(request: web.Request) -> web.Response:
    """Counts per partner and state, now and over 24 h; partner health; the instances and the
    configuration version each serves."""
    broker = request.config_dict[BROKER]
    await require(request, broker, "stats")
    figures = await views.overview(broker, request.config_dict[COUNTS])
    peak = max([d + o for _h, d, o in figures.hours] + [1])
    return render(request, "overview.html", o=figures, peak=peak, states=[s.value for s in State])


def search_params(request: web.Request, fields: dict[str, str]) -> dict[str, str]:
    """The filters a form sent, as the API's query parameters (times read in the viewer's zone)."""
    zone = i18n.zone_of(request.cookies.get(ZONE_COOKIE))
    params = {k: v.strip() for k, v in fields.items() if k in SEARCH_FIELDS and v.strip()}
    for name in ("since", "until"):
        if name in params:
            params[name] = i18n.to_query_time(params[name], zone)
    return params


async def exchanges(request: web.Request) -> web.Response:
    """Search with every filter the API has, newest first, a page at a time by cursor."""
    broker = request.config_dict[BROKER]
    caller = await require(request, broker, "search")
    if request.method == "POST":
        # The applicant's ID travels in a form body only: never in a URL, a history or a log.
        flat = {k: v for k, v in (await check_csrf(request, broker)).items() if k == "applicant"}
    else:
        flat = {k: ",".join(request.query.getall(k)) for k in request.query if k != "applicant"}
    params = search_params(request, flat)
    found: list[Exchange] = []
    error = ""
    try:
        query = query_from({**params, "limit": str(PAGE)}, applicant_ref=broker.applicant_ref)
    except BadQuery as exc:
        error = str(exc)
    else:
        found = await broker.journal.search(query)
        shown = {k: v for k, v in params.items() if k != "applicant"}  # never its value
        await record(
            request,
            broker,
            who=caller.id,
            role=caller.role,
            action="search",
            target="&".join(f"{k}={v}" for k, v in shown.items()),
        )
    next_params = None
    if len(found) == PAGE:
        kept = {k: v for k, v in flat.items() if k not in ("before", "applicant")}
        next_params = kept | {"before": found[-1].id}
    return render(
        request,
        "exchanges.html",
        found=found,
        error=error,
        form={k: v for k, v in flat.items() if k != "applicant"},
        filters={k: v for k, v in params.items() if k not in ("before", "applicant")},
        next_params=next_params,
        catalogue=broker.catalogue,
        states=[s.value for s in State],
        lifecycles=[x.value for x in Lifecycle],
        service_names=service_names(broker.catalogue, language_of(request)),
        status=400 if error else 200,
    )


def service_names(catalogue: Any, language: str) -> dict[str, str]:
    """Service code → its name in the viewer's language and script (``Names.shown``: English,
    简体 or 繁體 where partners.yaml gives it, else the official Chinese name), else the code."""
    out: dict[str, str] = {}
    for p in catalogue.config.partners.values():
        for code, s in p.services.items():
            out[code] = s.names.shown(language) if s.names else code
    return out


async def exchange(request: web.Request) -> web.Response:
    """One exchange: timeline, payloads masked unless revealed, replays, today's mapping."""
    return await _exchange_page(request, reveal_reason=None)


async def reveal(request: web.Request) -> web.Response:
    """The exchange page with its payloads in clear: a role that may reveal, and a reason."""
    broker = request.config_dict[BROKER]
    form = await check_csrf(request, broker)
    reason = form.get("reason", "").strip()
    if not reason:  # a role that may not reveal is refused for that first (require)
        caller = await require(request, broker, "reveal")
        problem = ProblemError(400, "invalid-request", "revealing personal data needs a reason")
        await refuse_without_body(request, problem)
        await audit_refusal(request, broker, (caller.id, caller.role), "reveal", problem)
        raise problem
    return await _exchange_page(request, reveal_reason=reason)


async def _exchange_page(request: web.Request, *, reveal_reason: str | None) -> web.Response:
    broker = request.config_dict[BROKER]
    exchange_id = request.match_info["id"]
    caller = await require(request, broker, "reveal" if reveal_reason else "show")
    if not EXCHANGE_ID_RE.fullmatch(exchange_id):
        raise ProblemError(404, "not-found", f"{exchange_id[:40]!r} is not an exchange id")
    ex = await broker.get(exchange_id)
    if ex is None:
        raise ProblemError(404, "not-found", f"no exchange {exchange_id}")
    clear = reveal_reason is not None or caller.role == "local"  # as the API's _may_reveal
    view = shown_view(ex, payloads=True, clear=clear)
    await record(
        request,
        broker,
        who=caller.id,
        role=caller.role,
        action="reveal" if reveal_reason else "show",
        target=ex.id,
        reason=reveal_reason or "",
        outcome="ok" if clear else "masked",
    )
    replays = [e for e in ex.events if e.kind == "replayed"]
    return render(
        request,
        "exchange.html",
        ex=ex,
        view=view,
        clear=clear,
        replays=replays,
        today=views.today(broker.catalogue, ex),
        replayable=ex.state in REPLAYABLE,
        service_name=service_names(broker.catalogue, language_of(request)).get(
            ex.service, ex.service
        ),
        dumps=_dumps,
    )


def _dumps(value: Any) -> str:
    """Pretty JSON for a page (CJK as it is, not escaped), dates and amounts as the journal
    writes them (the memory journal keeps a mapped request's date and Decimal objects)."""
    plain = orjson.loads(canonical_json(value))
    return json.dumps(plain, ensure_ascii=False, indent=2, sort_keys=True)
