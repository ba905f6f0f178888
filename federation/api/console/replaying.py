"""Replay from the console: one exchange or a filter, resend or remap, a reason always, a dry run
that says per exchange what would change, then progress until every replayed exchange has ended
(a run that replayed nothing says instead why each exchange was left as it is).

The plan and the run are ``replay.service.ReplayService``'s, as for ``POST /v1/replays`` and
``tongban replay``; who replays is the signed-in principal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from federation.api.auth import Caller
from federation.api.console import views
from federation.api.console.access import check_csrf, read_form, require
from federation.api.console.pages import search_params
from federation.api.console.render import gettext_of, render
from federation.api.edge import BROKER, EXCHANGE_ID_RE, refuse
from federation.api.problems import ProblemError
from federation.api.support import (
    BadQuery,
    audited_target,
    found_one,
    journal_refusal,
    query_from,
    replay_outcome,
)
from federation.api.trail import audit_refusal, record
from federation.domain.errors import RequestRefused
from federation.domain.models import Exchange, State
from federation.runtime.broker import Broker
from replay.journal import Query, TrailQuery
from replay.rules import reason_in
from replay.service import Mode, Plan, ReplayService, Result

SHOWN = 200  # a plan or a progress page lists at most this many exchanges
# A console replay's audit entry names its batch first, then the exchanges it replayed.
BATCH_MARK = "batch {}: "


@dataclass(frozen=True, kw_only=True)
class Change:
    """What a replay would do to one exchange."""

    ex: Exchange
    to_state: str
    detail: str
    paths: tuple[str, ...] = ()


def _filters(request: web.Request, form: dict[str, str]) -> dict[str, str]:
    """The exchange (``exchange_id``) or the search filters (``f_<name>``) a replay selects."""
    if form.get("exchange_id"):
        return {"id": form["exchange_id"]}
    return search_params(request, {k[2:]: v for k, v in form.items() if k.startswith("f_")})


async def _plan(broker: Broker, filters: dict[str, str], mode_text: str) -> Plan:
    if not filters:
        raise ProblemError(400, "invalid-request", "give an exchange or a filter")
    try:
        mode = Mode(mode_text)
    except ValueError:
        raise ProblemError(400, "invalid-request", "mode must be 'resend' or 'remap'") from None
    try:
        query = query_from(filters, applicant_ref=broker.applicant_ref, with_supplement_of=False)
    except BadQuery as exc:
        raise ProblemError(400, "invalid-query", str(exc)) from exc
    plan = await ReplayService(broker.journal).plan(query, mode)
    if "id" in filters:
        found_one(filters["id"], plan)
    return plan


async def changes(broker: Broker, plan: Plan, _: Callable[[str], str]) -> list[Change]:
    """Per exchange of the plan (the first SHOWN), what the replay would change; a remap's read
    whole, as the worker will map it (the plan's come from a search, without applications)."""
    out: list[Change] = []
    shown = plan.take[:SHOWN]
    if plan.mode is Mode.REMAP:
        shown = tuple(await views.whole(broker.journal, shown))
    for ex in shown:
        if plan.mode is Mode.RESEND:
            out.append(
                Change(
                    ex=ex,
                    to_state=State.QUEUED.value,
                    detail=_("the same request again, as attempt %(n)d") % {"n": ex.attempts + 1},
                )
            )
            continue
        today = views.today(broker.catalogue, ex)
        if not today.ok:  # where, not why: why can quote the application (the exchange's page
            # says it to whoever reveals it, with a reason)
            detail = _("today's mapping fails at: %(paths)s") % {
                "paths": ", ".join(today.paths) or "—"
            }
        elif today.changed:
            detail = _("the request changes at %(n)d field(s)") % {"n": len(today.changed)}
        else:
            detail = _("the request stays the same")
        out.append(Change(ex=ex, to_state=State.RECEIVED.value, detail=detail, paths=today.changed))
    return out


async def replay(request: web.Request) -> web.StreamResponse:
    """Plan (dry run) or run a replay; a run leads to its progress page. Every refusal is
    journalled and audited as the API's (``support.journal_refusal``): the caller's by
    ``require``, a form token not the session's by ``check_csrf``, the rest here."""
    broker = request.config_dict[BROKER]
    caller = await _replayer(request, broker)
    filters: dict[str, str] = {}
    try:
        form = await read_form(request)  # read once: check_csrf reads the same fields
    except RequestRefused as exc:
        await journal_refusal(request, broker, caller, exc, target="", size=_size(request))
        raise
    form = await check_csrf(request, broker)
    try:
        filters = _filters(request, form)
        return await _planned_or_run(request, broker, caller, form, filters)
    except RequestRefused as exc:
        asked = {"id": form["exchange_id"]} if form.get("exchange_id") else filters
        target = audited_target(asked, broker.applicant_ref)
        await journal_refusal(request, broker, caller, exc, target=target, size=_size(request))
        raise


async def _replayer(request: web.Request, broker: Broker) -> Caller:
    """The signed-in caller who may replay (``require``, which journals a refused role); a form
    sent with no session is journalled and audited here, as the API's unauthenticated key is."""
    try:
        return await require(request, broker, "replay")
    except ProblemError as exc:
        if exc.code == "unauthenticated":
            await refuse(request, broker, exc, None, b"", _size(request))
            await audit_refusal(request, broker, ("anonymous", ""), "replay", exc)
        raise


def _size(request: web.Request) -> int:
    return request.content_length or 0


async def _planned_or_run(
    request: web.Request,
    broker: Broker,
    caller: Caller,
    form: dict[str, str],
    filters: dict[str, str],
) -> web.StreamResponse:
    """The plan page (a dry run, or a bulk replay not confirmed yet), or the replay run."""
    plan = await _plan(broker, filters, form.get("mode", ""))
    reason = form.get("reason", "").strip()
    if form.get("dry_run") == "1" or ("id" not in filters and form.get("confirm") != "1"):
        shown = await changes(broker, plan, gettext_of(request))
        return _plan_page(request, plan, shown, form, bulk="id" not in filters)
    if not reason:
        raise ProblemError(400, "invalid-request", "a replay needs a reason")
    result = await ReplayService(broker.journal).run(plan, reason=reason, by=caller.id)
    await record(
        request,
        broker,
        who=caller.id,
        role=caller.role,
        action="replay",
        target=BATCH_MARK.format(result.batch)
        + (",".join(result.replayed) or "&".join(f"{k}={v}" for k, v in filters.items())),
        reason=reason,
        outcome=replay_outcome(result),
    )
    if not result.replayed:  # no progress to follow: the page says why each was left
        return _plan_page(request, left_as_they_are(plan, result), [], form, bulk=False)
    broker.worker.poke()
    raise web.HTTPSeeOther(f"/console/replays/{result.batch}")


def _plan_page(
    request: web.Request, plan: Plan, shown: list[Change], form: dict[str, str], *, bulk: bool
) -> web.Response:
    """The plan page: what a replay would change per exchange, and why any is left as it is."""
    return render(
        request,
        "plan.html",
        plan=plan,
        changes=shown,
        form=form,
        reason=form.get("reason", "").strip(),
        bulk=bulk,
        why_said=lambda why: reason_in(why, gettext_of(request)),
    )


def left_as_they_are(plan: Plan, result: Result) -> Plan:
    """A run that replayed nothing, as a plan that takes nothing: each exchange with why the run
    left it (not ended, never sent, or changed since it was planned), so no confirm form."""
    planned = {ex.id: ex for ex in (*plan.take, *(ex for ex, _why in plan.skip))}
    skip = tuple((planned[xid], why) for xid, why in result.skipped if xid in planned)
    codes = {ex.id: result.codes[ex.id] for ex, _why in skip}
    return Plan(mode=plan.mode, take=(), skip=skip, codes=codes)


async def batch_ids(broker: Broker, batch: str) -> tuple[str, ...] | None:
    """The exchanges a console replay batch replayed, from its audit entry (so any worker or
    instance sharing the journal can show its progress); None when there is no such batch."""
    if not EXCHANGE_ID_RE.fullmatch(batch):
        return None
    mark = BATCH_MARK.format(batch)
    found = await broker.journal.trail(TrailQuery(action="replay", target=mark, limit=1))
    if not found or not found[0].target.startswith(mark):
        return None
    listed = found[0].target[len(mark) :]
    return tuple(i for i in listed.split(",") if EXCHANGE_ID_RE.fullmatch(i))


async def progress(request: web.Request) -> web.Response:
    """Where each exchange of a replay batch stands; the page refreshes until all have ended."""
    broker = request.config_dict[BROKER]
    await require(request, broker, "search")
    batch = request.match_info["batch"]
    ids = await batch_ids(broker, batch)
    if ids is None:
        raise ProblemError(404, "not-found", f"no replay batch {batch[:40]!r}")
    now: list[Exchange] = []
    for xid in ids[:SHOWN]:
        found = await broker.journal.search(Query(exchange_id=xid, limit=1))
        now += found
    ended = sum(1 for ex in now if ex.state.terminal)
    done = ended == len(now)
    response = render(
        request, "progress.html", batch=batch, now=now, ended=ended, total=len(ids), done=done
    )
    if not done:
        response.headers["Refresh"] = "1"  # as the page's meta: until every one has ended
    return response
