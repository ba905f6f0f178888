"""Who is using the console: a principal's key exchanged for a session cookie (HttpOnly,
SameSite=Strict, expiring; kept in the journal, so every worker and instance knows it), a CSRF
token on every form, and each action allowed by the same
grants as the API (``federation/api/auth.py``: roles from ``config/principals.py``, and loopback
where no principal may)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from federation.api.auth import Caller, caller_may, guarded, is_loopback, principal_of
from federation.api.compare import as_bytes, same_token
from federation.api.edge import BROKER, refuse_without_body
from federation.api.problems import ProblemError
from federation.api.trail import audit_refusal, record
from federation.config import Config
from federation.config.principals import GRANTS
from federation.runtime.broker import Broker
from replay.journal import Journal
from replay.sessions import StoredSession

COOKIE = "tongban_console"
PRE_COOKIE = "tongban_console_pre"  # the sign-in form's CSRF token, before there is a session
SESSION_SECONDS = 8 * 3600
_ISSUED = re.compile(r"[A-Za-z0-9_-]{16,64}")  # what secrets.token_urlsafe gives
STAFF_ACTIONS = tuple(sorted({a for grants in GRANTS.values() for a in grants}))


@dataclass(frozen=True, kw_only=True)
class Session:
    """One signed-in browser: who, the form token, and when it ends."""

    token: str
    principal: str  # a principal's id, or ``loopback`` for this machine's own staff
    role: str
    csrf: str
    expires: float


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def _sealed(journal: Journal, nonce: str, principal: str, role: str, expires: float) -> str:
    """The part of a session's token that vouches for its row: an HMAC, under the journal's key,
    of the token's random part, who signed in, their role and when the session ends. Empty when
    the journal has no keys (an unkeyed PostgreSQL journal), where the row is taken as it is."""
    parts = (nonce.encode(), principal.encode(), role.encode(), struct.pack(">d", expires))
    mac = journal.session_mac(parts)
    return "" if mac is None else base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _csrf(token: str) -> str:
    """The session's form token, derived from its (secret, HttpOnly) cookie token, so that no
    process needs to keep it: the same in every worker."""
    mac = hmac.digest(token.encode(), b"tongban/console-csrf", "sha256")
    return base64.urlsafe_b64encode(mac[:24]).decode()


class Sessions:
    """The console's sessions, kept in the journal (only their tokens' hashes): every worker
    and every instance sharing the journal knows them, and a sign-out ends them everywhere."""

    async def open(self, journal: Journal, principal: str, role: str) -> Session:
        """A new session for ``principal``, ending after SESSION_SECONDS."""
        now = time.time()
        nonce = secrets.token_urlsafe(32)
        expires = now + SESSION_SECONDS
        token = nonce + "." + _sealed(journal, nonce, principal, role, expires)
        stored = StoredSession(
            token_hash=_hash(token), principal=principal, role=role, expires_at=expires
        )
        await journal.open_session(stored, now=now)
        return Session(
            token=token, principal=principal, role=role, csrf=_csrf(token), expires=expires
        )

    async def get(self, journal: Journal, token: str | None) -> Session | None:
        """The live session of ``token``, or None (unknown, ended, expired, or a row its token's
        MAC does not vouch for: written or changed in the database by someone without the key)."""
        if not token or as_bytes(token) is None:  # a lone surrogate no cookie byte gives
            return None
        stored = await journal.session(_hash(token), now=time.time())
        if stored is None:
            return None
        nonce, _, mac = token.partition(".")
        expected = _sealed(journal, nonce, stored.principal, stored.role, stored.expires_at)
        if not same_token(mac, expected):
            return None
        return Session(
            token=token,
            principal=stored.principal,
            role=stored.role,
            csrf=_csrf(token),
            expires=stored.expires_at,
        )

    async def close(self, journal: Journal, token: str) -> None:
        """End the session of ``token``."""
        await journal.end_session(_hash(token))


SESSIONS = web.AppKey("console_sessions", Sessions)
# the request's session, looked up once by ``with_session``
FOUND: web.RequestKey[Session | None] = web.RequestKey("tongban_console_session")


@web.middleware
async def with_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Look the request's session up in the journal once, before its handler runs."""
    broker = request.config_dict[BROKER]
    request[FOUND] = await request.config_dict[SESSIONS].get(
        broker.journal, request.cookies.get(COOKIE)
    )
    return await handler(request)


def loopback_offered(request: web.Request, config: Config) -> bool:
    """Whether 'this machine' is offered at sign-in: a loopback visitor, and some staff action
    that no principal may do (the API answers those on loopback too)."""
    return is_loopback(request.remote) and any(not guarded(config, a) for a in STAFF_ACTIONS)


def session_of(request: web.Request, broker: Broker) -> Session | None:
    """The request's session, if it is live and its principal is still declared."""
    session = request.get(FOUND)
    if session is None:
        return None
    if session.role == "local":
        return session if loopback_offered(request, broker.catalogue.config) else None
    current = [p for p in broker.catalogue.config.principals if p.id == session.principal]
    return session if current and current[0].role == session.role else None


def caller_of_session(request: web.Request, session: Session) -> Caller:
    """The API's Caller for a session (the same grants decide)."""
    return Caller(id=session.principal, role=session.role, remote=request.remote or "")


def may(request: web.Request, broker: Broker, caller: Caller, action: str) -> bool:
    """Whether ``caller`` may ``action`` here: its role's grants, or for this machine's own
    staff, an action no principal may do asked from loopback (as ``staff_caller``)."""
    if caller.role == "local":
        return not guarded(broker.catalogue.config, action) and is_loopback(request.remote)
    return caller_may(caller, action)


async def require(request: web.Request, broker: Broker, action: str) -> Caller:
    """The signed-in caller allowed ``action``; otherwise to the sign-in page, or a refusal
    (journalled and audited, as the API's)."""
    session = session_of(request, broker)
    if session is None:
        if request.method == "GET":
            raise web.HTTPSeeOther(f"/console/sign-in?next={request.path_qs}")
        unsigned = ProblemError(401, "unauthenticated", "sign in first")
        await refuse_without_body(request, unsigned)
        raise unsigned
    caller = caller_of_session(request, session)
    if not may(request, broker, caller, action):
        problem = ProblemError(
            403, "forbidden", f"principal {caller.id!r} ({caller.role}) may not {action}"
        )
        await refuse_without_body(request, problem)
        await audit_refusal(request, broker, (caller.id, caller.role), action, problem)
        raise problem
    return caller


async def read_form(request: web.Request) -> dict[str, str]:
    """A console form's fields; a body the form reader cannot read (bytes not in its charset, a
    charset not known, a multipart body without its boundary or with a broken part) is 400
    invalid-request, a page in the viewer's language, never a 500 (nothing of the body logged),
    journalled without the body (a form carries sign-in keys, form tokens and reasons)."""
    try:
        fields = await request.post()
    except (ValueError, LookupError) as exc:  # UnicodeDecodeError is a ValueError
        detail = f"the form cannot be read ({type(exc).__name__}); send it as UTF-8"
        problem = ProblemError(400, "invalid-request", detail)
        await refuse_without_body(request, problem)
        raise problem from None
    return {k: str(v) for k, v in fields.items()}


async def check_csrf(request: web.Request, broker: Broker) -> dict[str, str]:
    """The form's fields, once its CSRF token matches the session's (refused otherwise, and
    journalled without the form: its size only)."""
    form = await read_form(request)
    session = session_of(request, broker)
    if session is None:
        unsigned = ProblemError(401, "unauthenticated", "sign in first")
        await refuse_without_body(request, unsigned)
        raise unsigned
    if not same_token(form.get("csrf", ""), session.csrf):
        problem = ProblemError(403, "forbidden", "the form's token is not this session's")
        await refuse_without_body(request, problem)
        await audit_refusal(
            request, broker, (session.principal, session.role), "console-form", problem
        )
        raise problem
    return form


async def check_sign_in_token(request: web.Request, form: dict[str, str]) -> None:
    """The sign-in form's token (double-submit: its hidden field and its cookie) must match;
    refused 403 otherwise, journalled without the form (its size only), as every console form."""
    sent, kept = form.get("pre", ""), request.cookies.get(PRE_COOKIE, "")
    if not sent or not same_token(sent, kept):
        problem = ProblemError(
            403, "forbidden", "the sign-in form's token does not match; reload it"
        )
        await refuse_without_body(request, problem)
        raise problem


async def sign_in(request: web.Request, broker: Broker, form: dict[str, str]) -> Session:
    """Exchange a principal's key (or, where offered, 'this machine') for a session."""
    config = broker.catalogue.config
    if form.get("loopback") == "1" and loopback_offered(request, config):
        principal, role = "loopback", "local"
    else:
        found = principal_of(config, form.get("key", "").strip())
        if found is None or found.role not in GRANTS:
            problem = ProblemError(403, "forbidden", "that key is no staff principal's")
            await refuse_without_body(request, problem)
            who = ("unknown-key", "") if found is None else (found.id, found.role)
            await audit_refusal(request, broker, who, "console-sign-in", problem)
            raise problem
        principal, role = found.id, found.role
    session = await request.config_dict[SESSIONS].open(broker.journal, principal, role)
    await record(request, broker, who=principal, role=role, action="console-sign-in")
    return session


def set_session_cookie(
    request: web.Request, response: web.StreamResponse, session: Session
) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, expiring with the session."""
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=SESSION_SECONDS,
        path="/console/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


def pre_token(request: web.Request) -> str:
    """The sign-in form's CSRF token (double-submit: a cookie and the form's hidden field): the
    cookie's when it is one this broker could have given (a byte not UTF-8 in it, read as a lone
    surrogate, could not be written into the page), else a new one."""
    kept = request.cookies.get(PRE_COOKIE, "")
    return kept if _ISSUED.fullmatch(kept) else secrets.token_urlsafe(24)


def set_pre_cookie(response: web.StreamResponse, token: str) -> None:
    """The cookie half of the sign-in form's token."""
    response.set_cookie(
        PRE_COOKIE, token, path="/console/", httponly=True, samesite="Strict", max_age=3600
    )
