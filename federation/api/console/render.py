"""Pages from Jinja2 templates, one environment per language (gettext installed in each), with
what every page needs: the viewer's language and zone, who is signed in and what they may do."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from federation.api.console import i18n
from federation.api.console.access import caller_of_session, may, session_of
from federation.api.edge import BROKER
from federation.domain.words import shown_error
from federation.logging import MASK

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "tongban_lang"
ZONE_COOKIE = "tongban_zone"


@functools.cache
def environment(language: str) -> jinja2.Environment:
    """The template environment of ``language`` (autoescaped, its catalogue installed)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def language_of(request: web.Request) -> str:
    """The viewer's language: ``?lang=``, the switch's cookie, or Accept-Language."""
    chosen = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    return i18n.negotiate(chosen, request.headers.get("Accept-Language", ""))


def gettext_of(request: web.Request) -> Callable[[str], str]:
    """The viewer's ``gettext`` (for messages composed in Python)."""
    return i18n.translations(language_of(request)).gettext


def error_said(error: Mapping[str, Any] | None) -> str:
    """An error's message on a list, the partner's words masked (they can quote the application:
    an exchange's page shows them to whoever reveals it)."""
    return str((shown_error(error, clear=False, mask=MASK) or {}).get("message", ""))


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    """``template`` rendered for the viewer, as an HTML answer."""
    broker = request.config_dict[BROKER]
    language = language_of(request)
    zone = i18n.zone_of(request.cookies.get(ZONE_COOKIE))
    session = session_of(request, broker)
    caller = caller_of_session(request, session) if session is not None else None

    def allowed(action: str) -> bool:
        return caller is not None and may(request, broker, caller, action)

    page = (
        environment(language)
        .get_template(template)
        .render(
            lang=language,
            html_lang=i18n.HTML_LANG[language],
            languages=i18n.LANGUAGE_NAMES,
            zone=zone.key,
            when=lambda epoch: i18n.local_time(epoch, zone),
            when_iso=lambda text: i18n.iso_local_time(text, zone),
            caller=caller,
            csrf=session.csrf if session is not None else "",
            may=allowed,
            path=request.path,
            query=dict(request.query),
            said=error_said,
            **context,
        )
    )
    response = web.Response(text=page, status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.query.get("lang") in i18n.LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            request.query["lang"],
            path="/console/",
            samesite="Strict",
            max_age=31536000,
        )
    return response
