"""The HTTP edge's shared parts: the app's typed state, reading bodies within limits, keeping every
refused request in the journal, and the one middleware that turns domain errors into problem details.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, PayloadEncodingError
from aiohttp.web_protocol import RequestPayloadError
from multidict import CIMultiDict

from federation.api.budget import budget_of, written
from federation.api.coding import coding_of, decompressed
from federation.api.problems import ACCEPT_LANGUAGE, ProblemError, problem_response, status_of
from federation.config.model import BrokerSettings
from federation.domain.errors import (
    IdempotencyConflict,
    JournalDamaged,
    JournalError,
    JournalUnavailable,
    MappingError,
    RequestRefused,
)
from federation.domain.media import charset_of
from federation.domain.models import Exchange
from federation.domain.strictjson import DuplicateKey, loads
from federation.logging import bare_traceback, get_logger
from federation.runtime.broker import Broker
from federation.runtime.filing import conflict
from replay.journal import Refusal

_log = get_logger(component="api")


BROKER: web.AppKey[Broker] = web.AppKey("broker", Broker)
# set once a refusal of the request is journalled: one request, one refusal row
REFUSED: web.RequestKey[bool] = web.RequestKey("tongban_refused", bool)
PATH_KEPT = 1024  # characters of a request's path kept with its refusal


EXCHANGE_ID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


JSON = frozenset({"application/json"})
_CODING = "content-encoding"  # every such header counts: a request may send several
UTF8 = frozenset({"utf-8"})  # the charsets a JSON body may declare (none is fine too)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place errors become answers: refusals and domain errors as their problem details,
    anything else as a 500, logged by route and traceback but nothing of the request."""
    language = ACCEPT_LANGUAGE.set(_language(request))  # for problems a handler answers itself
    try:
        return await _answered(request, handler)
    finally:
        ACCEPT_LANGUAGE.reset(language)


async def _answered(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        await _form_checked(request)
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return await http_problem(request, exc)
    except Exception as exc:
        refused = refusal_of(exc)
        if refused is None:
            _log.error(
                "request_failed",
                method=request.method,
                route=route_of(request),
                error=type(exc).__name__,
                exception=bare_traceback(exc),  # frames and types: its message may quote the body
            )
            await _failed(request)
            return problem_response(
                500,
                "internal-error",
                "an unexpected error occurred; it was logged",
                instance=request.path,
                accept_language=_language(request),
            )
        response = problem_response(
            status_of(refused),
            refused.code,
            refused.detail,
            instance=request.path,
            accept_language=_language(request),
            **refused.extra,
        )
        if response.status == 408:
            await cut_off(request, response)
        return response


async def _failed(request: web.Request) -> None:
    """Journal a request a defect of the broker answered 500 (``internal-error``), as a refusal:
    with its body where its route keeps the bodies it refuses (an application, a partner's
    filing: :class:`Received`), else its size only (a console form, a replay's reason). Never
    raises: the journal that could not take it is logged, and the answer stays the 500."""
    failed = ProblemError(500, "internal-error", "an unexpected error occurred; it was logged")
    got = request.get(RECEIVED)
    try:
        if got is not None and got.kept:
            broker = request.config_dict.get(BROKER)
            if broker is not None:
                await got.refuse(broker, failed, None)
        else:
            await refuse_without_body(request, failed)
    except Exception as exc:  # the journal itself failing: the 500 is answered all the same
        _log.error("refusal_not_journalled", route=route_of(request), error=type(exc).__name__)


def _language(request: web.Request) -> str:
    return request.headers.get("Accept-Language", "")


async def _form_checked(request: web.Request) -> None:
    """:func:`form_uncompressed`, its 415 journalled (a form's body is never kept)."""
    try:
        form_uncompressed(request)
    except ProblemError as problem:
        await refuse_without_body(request, problem)
        raise


HTTP_SLUGS = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}


async def http_problem(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusal (no route at this path 404, not this method 405, a body past the
    app's ``client_max_size`` 413 while a form is read) as problem details, journalled like every
    refusal: the path (no query string), status and type, no body (no route took one; a form
    past the limit is not kept); a 405 says the methods the path takes, in ``Allow`` too."""
    slug = HTTP_SLUGS.get(exc.status, "http-error")
    extra: dict[str, Any] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        detail = f"{request.method} is not taken here; this path takes {', '.join(allowed)}"
        extra["allowed"] = allowed
    elif exc.status == 404:
        detail = "no route answers this path"
    elif exc.status == 413:
        detail = "the body is larger than the limit; none of it is kept"
    else:
        detail = exc.reason
    await refuse_without_body(request, ProblemError(exc.status, slug, detail, **extra))
    response = problem_response(
        exc.status, slug, detail, instance=request.path, accept_language=_language(request), **extra
    )
    if "allowed" in extra:
        response.headers["Allow"] = ", ".join(extra["allowed"])
    return response


def form_uncompressed(request: web.Request) -> None:
    """The console (the app's one sub-application) reads its forms with aiohttp's own reader,
    which reads no content coding here (the edge's server leaves bodies compressed): a form sent
    with one would be read as its compressed bytes (a 500, or other fields than were sent), so it
    is refused, 415 unsupported-content-encoding. Browsers send forms uncompressed."""
    if len(request.match_info.apps) < 2 or request.method not in request.POST_METHODS:
        return
    coding = coding_of(v for k, v in request.headers.items() if k.lower() == _CODING)
    if coding is not None:
        raise ProblemError(
            415,
            "unsupported-content-encoding",
            f"the console reads its forms uncompressed, not {coding}: send the form without "
            "Content-Encoding",
            accepted=[],
        )


class _NoServerHeaders(CIMultiDict[str]):
    """Response headers that do not take aiohttp's default ``Server: Python/… aiohttp/…``
    (it is set with ``setdefault`` just before the headers are written): no version banner."""

    def setdefault(self, key: str, default: str = "") -> str:
        if key.lower() == "server":
            return default
        return super().setdefault(key, default)


def without_server(response: web.StreamResponse) -> None:
    """Keep ``response`` from announcing the server software (called before it is prepared)."""
    headers = _NoServerHeaders(response.headers)
    headers.pop("Server", None)
    response._headers = headers  # aiohttp has no switch for its Server header


async def strip_server(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: no answer of the app carries a ``Server`` header."""
    without_server(response)


async def cut_off(request: web.Request, response: web.StreamResponse) -> None:
    """Send ``response`` and close the connection: the rest of a stalled body is never read (else
    aiohttp would wait for it, up to its lingering time, before closing)."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()


def refusal_of(exc: Exception) -> RequestRefused | None:
    """The refusal that answers an error a handler let through; None for a failure of ours.

    Domain errors the runtime raises are answered by kind: the journal down is 503, a reused key
    409, an application that does not map 422; a client that went away mid-request, 400.
    """
    if isinstance(exc, RequestRefused):
        return exc
    if isinstance(exc, JournalUnavailable):
        _log.error("journal_unavailable", error=str(exc))
        return ProblemError(503, "journal-unavailable", "the journal is unavailable; retry later")
    if isinstance(exc, JournalDamaged):
        _log.error("journal_damaged", error=str(exc))
        return ProblemError(
            500,
            "journal-damaged",
            "a record in the journal does not read as it was written; nothing was changed",
        )
    if isinstance(exc, IdempotencyConflict):
        return conflict(exc)
    if isinstance(exc, MappingError):
        problems = [p.to_dict() for p in exc.problems]
        return ProblemError(
            422,
            "mapping-failed",
            f"{len(problems)} field(s) cannot be taken; nothing was passed on",
            errors=problems,
        )
    if isinstance(exc, ConnectionResetError):  # aiohttp's "Connection lost" while reading
        return lost_connection(0)
    return None


def route_of(request: web.Request) -> str:
    """The route's pattern (``/v1/partners/{partner}/applications/{key}``), for logs: the path
    itself may carry keys and ids."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(no route)"


def lost_connection(size: int) -> ProblemError:
    """The refusal of a request whose client went away before its body was read."""
    return ProblemError(
        400,
        "incomplete-body",
        f"the connection was lost after {size} byte(s) of the body; nothing was filed",
    )


def parsed(body: bytes | str, what: str = "body") -> Any:
    """A JSON body (or JSON text ``what`` carries) read strictly: 400 malformed-json when it is
    not JSON, or names a key twice in one object (the path named, never a value)."""
    try:
        return loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProblemError(400, "malformed-json", f"{what} is not valid JSON: {exc}") from None
    except DuplicateKey as exc:
        raise ProblemError(
            400, "malformed-json", f"{what} is ambiguous JSON: {exc}; send each key once"
        ) from None


def material_of(body: bytes) -> dict[str, Any]:
    data = parsed(body)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("material"), dict)
        or set(data) != {"material"}
    ):
        raise ProblemError(400, "invalid-request", 'send {"material": {…}}: the requested material')
    material: dict[str, Any] = data["material"]
    return material


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
    request: web.Request,
    limit: int,
    media_types: frozenset[str] = JSON,
    charsets: frozenset[str] = UTF8,
) -> tuple[bytes, int]:
    """Read the body within the limit (kept even when refused), then check its media type and
    the charset it declares, if any (a body in another charset is never read as UTF-8)."""
    body, size = await raw_body(request, limit)
    try:
        problem = media_problem(request.headers.get("Content-Type", ""), media_types, charsets)
        if problem is not None:
            raise problem
        body = as_coded(request, body, limit)
    except ProblemError as problem:
        raise Refused(problem, body, size) from None
    return body, len(body)


async def raw_body(request: web.Request, limit: int) -> tuple[bytes, int]:
    """The body's bytes as sent (still in their content coding), never more than ``limit``:
    413 (a ProblemError, nothing kept) past it; a body that stalls or is cut short is a Refused
    carrying what had arrived."""
    if request.content_length is not None and request.content_length > limit:
        raise ProblemError(
            413,
            "body-too-large",
            f"body is {request.content_length} bytes; the limit is {limit}",
            limit=limit,
        )
    chunks: list[bytes] = []
    size = 0
    timeout = body_timeout(request)
    try:
        while chunk := await _next_chunk(request, timeout, size, chunks):
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
    except (ConnectionError, PayloadEncodingError, RequestPayloadError) as exc:
        # The client went away (or broke the chunked framing) mid-body: a refusal, whose part of
        # the body is kept for the journal, never a 500 with the body in a traceback.
        raise Refused(payload_problem(exc, size), b"".join(chunks), size) from None
    return b"".join(chunks), size


def as_coded(request: web.Request, body: bytes, limit: int) -> bytes:
    """``body`` decompressed as its Content-Encoding says (the edge's server leaves it to us),
    within ``limit``: 415 for a coding not read here, 400 or 413 as :func:`decompressed` says."""
    coding = coding_of(v for k, v in request.headers.items() if k.lower() == _CODING)
    return body if coding is None else decompressed(body, coding, limit)


def payload_problem(exc: Exception, size: int) -> ProblemError:
    """The refusal of a body whose reading failed: one that aiohttp could not decompress (a
    server that decompresses bodies itself), else one cut short or broken in its framing."""
    if isinstance(exc.__cause__, ContentEncodingError):
        return ProblemError(
            400,
            "body-not-decompressible",
            "the body does not decompress as its Content-Encoding says; send it compressed so, "
            "or uncompressed without that header",
        )
    return lost_connection(size)


def media_problem(
    ctype: str, media_types: frozenset[str], charsets: frozenset[str]
) -> ProblemError | None:
    """Why a body sent with this Content-Type is refused (415), or None: a media type not
    spoken here, or a charset declared that is not read here."""
    if ctype.split(";")[0].strip().lower() not in media_types:
        return ProblemError(
            415,
            "unsupported-media-type",
            f"send the application as {' or '.join(sorted(media_types))}, "
            f"not {ctype or 'no type'!r}",
        )
    charset = charset_of(ctype)
    if charset is not None and charset not in charsets:
        return ProblemError(
            415,
            "unsupported-media-type",
            f"the body's charset must be {' or '.join(sorted(charsets))} (or not given), "
            f"not {charset!r}",
        )
    return None


def body_limit(request: web.Request) -> int:
    """The largest body read (``broker.max_body_bytes``)."""
    broker = request.app.get(BROKER)
    settings = BrokerSettings() if broker is None else broker.catalogue.config.broker
    return settings.max_body_bytes


def body_timeout(request: web.Request) -> float:
    """How long a body may stall between two reads (``broker.body_timeout``)."""
    broker = request.app.get(BROKER)
    return 10.0 if broker is None else broker.catalogue.config.broker.body_timeout


async def _next_chunk(request: web.Request, stall: float, size: int, chunks: list[bytes]) -> bytes:
    """The next part of the body (b"" at its end); a client that sends nothing for ``stall``
    seconds is cut off: a slow sender must not hold a connection and a buffer open for ever."""
    content = request.content
    if content.is_eof():  # the whole body has arrived: nothing can stall, no timer to set
        return content.read_nowait()
    try:
        async with asyncio.timeout(stall):
            return await content.readany()
    except TimeoutError:
        problem = ProblemError(
            408,
            "body-timeout",
            f"the body stalled for {stall:g}s after {size} byte(s); nothing was filed",
            timeout_seconds=stall,
        )
        raise Refused(problem, b"".join(chunks), size) from None


class Received:
    """A request body as far as it was read: kept for the refusal record even when refused.

    A route that takes a body journals its refusals with :meth:`refuse` (never :func:`refuse`
    with a body of its own): a refusal raised before the route read the body (a wrong key, an
    unknown exchange, an exchange not in a state to take it) is kept with the body all the same,
    read then for the record (:meth:`rest`), within the same limits."""

    def __init__(self, request: web.Request, *, kept: bool = True) -> None:
        self.request = request
        self.body = b""
        self.size = request.content_length or 0
        self.tried = False  # whether the body was read (or reading it was refused)
        # whether a refusal keeps the body (a replay's reason and filters can name a person: no);
        # what a 500 of this request keeps too (:func:`_failed`)
        self.kept = kept
        request[RECEIVED] = self

    async def read(
        self, limit: int, media_types: frozenset[str] = JSON, charsets: frozenset[str] = UTF8
    ) -> bytes:
        """The body within ``limit``; a refusal raises its ProblemError, the body kept here."""
        self.tried = True
        try:
            self.body, self.size = await read_body(self.request, limit, media_types, charsets)
        except Refused as refused:
            self.body, self.size = refused.body, refused.size
            raise refused.problem from None
        except ProblemError as problem:  # past the limit: nothing kept, the size as far as read
            self.size = int(problem.extra.get("received_bytes", self.size))
            raise
        return self.body

    async def rest(self) -> None:
        """Read a body the route has not read, only to keep it with a refusal: within the body
        limit and its stall timeout, decompressed within that limit when it decompresses (else
        kept as sent), nothing kept past the limit (its size only). Never raises: the refusal
        answered is the route's, not one about a body it did not need."""
        if self.tried:
            return
        self.tried = True
        limit = body_limit(self.request)
        try:
            body, _ = await raw_body(self.request, limit)
        except Refused as refused:  # stalled or cut short: what had arrived
            self.body, self.size = refused.body, refused.size
            return
        except ProblemError as problem:  # past the limit: nothing kept, the size as far as read
            self.size = int(problem.extra.get("received_bytes", self.size))
            return
        with contextlib.suppress(ProblemError):  # one that does not decompress: kept as sent
            body = as_coded(self.request, body, limit)
        self.body, self.size = body, len(body)

    async def refuse(self, broker: Broker, exc: RequestRefused, key: str | None) -> None:
        """Journal the refusal ``exc`` of this request with its body (read now if it was not)."""
        await self.rest()
        await refuse(self.request, broker, exc, key, self.body, self.size)


RECEIVED: web.RequestKey[Received] = web.RequestKey("tongban_received", Received)


class Refused(Exception):
    """A refusal raised after the body was read, carrying the body for the journal."""

    def __init__(self, problem: ProblemError, body: bytes, size: int) -> None:
        super().__init__(problem.detail)
        self.problem, self.body, self.size = problem, body, size


async def refuse(
    request: web.Request,
    broker: Broker,
    exc: RequestRefused,
    key: str | None,
    body: bytes,
    size: int,
) -> None:
    """Keep a refused request in the journal's refusals (and log it without its content), its
    texts as every journal stores them (see ``storable``). A route that takes a body journals by
    :meth:`Received.refuse`, which reads a body the route refused before reading; ``body`` here
    is for requests that have none, or whose body is deliberately not kept.

    One request is one refusal: a second one journalled for the same request (a route that
    journals a refusal a shared check has journalled already) is not kept again. The path is
    kept without its query string, its first :data:`PATH_KEPT` characters."""
    if request.get(REFUSED):
        return
    request[REFUSED] = True
    refusal = Refusal(
        at=time.time(),
        remote=storable(request.remote or ""),
        method=storable(request.method),
        path=storable(bounded(request.path)),
        status=status_of(exc),
        problem=storable(exc.code),
        detail=storable(exc.detail),
        idempotency_key=None if key is None else storable(key),
        body=body,
        body_bytes=size,
    )
    await journalled(broker, refusal)


async def journalled(broker: Broker, refusal: Refusal) -> None:
    """Journal ``refusal`` within the refusal budget (``broker.refusal_budget``, budget.py): as
    it is, without its body past the budget of bodies, or counted for its address's summary row
    past the budget of rows (then not logged one by one either); with it, the summary rows of a
    window that has ended."""
    budget = budget_of(broker.journal)
    budget.configure(
        broker.catalogue.config.broker.refusal_budget, broker.metrics.refusals_not_kept
    )
    kept = budget.admit(refusal)
    if kept is not None:
        try:
            await broker.journal.refuse(kept)
        except JournalError as err:
            _log.error("refusal_not_journalled", error=str(err), problem=kept.problem)
        _log.info("intake_refused", status=kept.status, problem=kept.problem)
    await written(broker.journal, budget.due())
    budget.watch(broker.journal)


async def refuse_without_body(request: web.Request, exc: RequestRefused) -> None:
    """Journal the refusal ``exc`` keeping no body, its size only (what ``Content-Length`` said):
    a request no route took, or a console form (sign-in keys, form tokens and reasons are never
    kept). Nothing is journalled by an app with no broker."""
    broker = request.config_dict.get(BROKER)
    if broker is not None:
        await refuse(request, broker, exc, None, b"", request.content_length or 0)


def bounded(path: str) -> str:
    """``path`` as kept with a refusal: its first :data:`PATH_KEPT` characters, and how long it was
    when it was longer (a path no route takes can be as long as the request line)."""
    if len(path) <= PATH_KEPT:
        return path
    return f"{path[:PATH_KEPT]}…({len(path)} characters)"


def storable(text: str) -> str:
    """``text`` from a request (a header's value, the path, a detail quoting them) in the one form
    every journal stores: a byte that was not UTF-8, which aiohttp reads as a lone surrogate, as
    its escape (``a\\udcff2``) and NUL as ``\\x00``, as PostgreSQL keeps them (which can hold
    neither); else SQLite could not store the row (a 500) and memory kept what the others do not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")


def json_object(body: bytes) -> dict[str, Any]:
    data = parsed(body)
    if not isinstance(data, dict):
        raise ProblemError(400, "invalid-request", "body must be a JSON object")
    return data
