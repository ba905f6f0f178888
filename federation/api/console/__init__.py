"""The operator and support console under ``/console/``: server-rendered pages in 简体, 繁體
and English over the same code paths as the API (docs/console.md).

Pages: overview, exchanges (search), an exchange (timeline, reveal, replay), replay plans and
progress, the mapping playground, refusals and the audit trail; sign-in exchanges a principal's
key for a session cookie."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from federation.api.console import pages, playground, records, replaying, views
from federation.api.console.access import (
    COOKIE,
    SESSIONS,
    Sessions,
    check_csrf,
    check_sign_in_token,
    loopback_offered,
    pre_token,
    read_form,
    session_of,
    set_pre_cookie,
    set_session_cookie,
    sign_in,
    with_session,
)
from federation.api.console.render import gettext_of, render
from federation.api.edge import BROKER, Handler
from federation.api.problems import status_of
from federation.domain.errors import RequestRefused


@web.middleware
async def pages_for_problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A refusal inside the console is a page in the viewer's language, with its status."""
    try:
        return await handler(request)
    except RequestRefused as exc:
        status = status_of(exc)
        return render(
            request,
            "problem.html",
            status=status,
            title=problem_title(gettext_of(request), status),
            code=exc.code,
            detail=exc.detail,
        )


def problem_title(_: Callable[[str], str], status: int) -> str:
    """A refusal's title in the viewer's language, by its status (the detail says exactly)."""
    titles = {
        400: _("The request cannot be done as given"),
        401: _("Sign in first"),
        403: _("Not allowed"),
        404: _("Not found"),
        409: _("In conflict with what is stored"),
        413: _("Too large"),
        422: _("Cannot be processed"),
        503: _("Not available right now"),
    }
    return titles.get(status) or titles[400]


def create_console() -> web.Application:
    """The console as a sub-application (mounted at ``/console/`` by the API's app)."""
    app = web.Application(middlewares=[pages_for_problems, with_session])
    app[SESSIONS] = Sessions()
    app[pages.COUNTS] = views.Counts()
    app.on_cleanup.append(_stop_counting)
    app.router.add_get("/", pages.overview)
    app.router.add_get("/sign-in", sign_in_page)
    app.router.add_post("/sign-in", sign_in_form)
    app.router.add_post("/sign-out", sign_out)
    app.router.add_get("/exchanges", pages.exchanges)
    app.router.add_post("/exchanges", pages.exchanges)  # by applicant: the ID in the body only
    app.router.add_get("/exchanges/{id}", pages.exchange)
    app.router.add_post("/exchanges/{id}/reveal", pages.reveal)
    app.router.add_post("/replays", replaying.replay)
    app.router.add_get("/replays/{batch}", replaying.progress)
    app.router.add_get("/playground", playground.page)
    app.router.add_post("/playground/run", playground.run)
    app.router.add_post("/playground/save", playground.save)
    app.router.add_post("/playground/patch", playground.patch)
    app.router.add_get("/refusals", records.refusals)
    app.router.add_get("/audit", records.audit)
    return app


async def sign_in_page(request: web.Request) -> web.Response:
    """The sign-in form: a principal's key, or this machine where the API allows loopback."""
    broker = request.config_dict[BROKER]
    pre = pre_token(request)
    response = render(
        request,
        "sign_in.html",
        pre=pre,
        next=_next(request.query.get("next", "")),
        loopback=loopback_offered(request, broker.catalogue.config),
        error="",
    )
    set_pre_cookie(response, pre)
    return response


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    """Exchange the key for a session cookie, then on to the page asked for."""
    broker = request.config_dict[BROKER]
    form = await read_form(request)
    await check_sign_in_token(request, form)
    session = await sign_in(request, broker, form)
    response = web.HTTPSeeOther(_next(form.get("next", "")))
    set_session_cookie(request, response, session)
    raise response


async def sign_out(request: web.Request) -> web.StreamResponse:
    """End the session."""
    broker = request.config_dict[BROKER]
    await check_csrf(request, broker)
    session = session_of(request, broker)
    if session is not None:
        await request.config_dict[SESSIONS].close(broker.journal, session.token)
    response = web.HTTPSeeOther("/console/sign-in")
    response.del_cookie(COOKIE, path="/console/")
    raise response


async def _stop_counting(app: web.Application) -> None:
    await app[pages.COUNTS].close()


def _next(target: str) -> str:
    """Where to go after signing in: a console page only (never another site)."""
    return target if target.startswith("/console/") and not target.startswith("//") else "/console/"
