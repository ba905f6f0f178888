"""RFC 9457 problem details: every error the HTTP API returns has this shape."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import orjson
from aiohttp import web

from federation.api.i18n import problem_title
from federation.domain.errors import RefusalKind, RequestRefused

# The Accept-Language of the request being answered, set by the edge's middleware: the title of an
# answer made where the request is not at hand (a dry run's 422) follows it too.
ACCEPT_LANGUAGE: ContextVar[str] = ContextVar("accept_language", default="")

PROBLEM_TYPE = "urn:tongban:problem:"
CONTENT_TYPE = "application/problem+json"

TITLES = {
    "malformed-json": "Request body is not valid JSON",
    "malformed-xml": "Request body is not well-formed XML",
    "xml-refused": "Request body uses XML features that are not accepted",
    "version-mismatch": "Only SOAP 1.1 is spoken here",
    "soap-action-missing": "SOAP 1.1 requests need a SOAPAction header",
    "soap-action-mismatch": "The SOAPAction header names another operation than the Body",
    "invalid-request": "Request does not have the required shape",
    "invalid-application": "The application does not conform to the local application format",
    "unsupported-media-type": "Request body must be application/json",
    "body-too-large": "Request body is larger than the limit",
    "body-not-decompressible": "Request body does not decompress as its Content-Encoding says",
    "unsupported-content-encoding": "Request body's Content-Encoding is not supported",
    "incomplete-body": "The connection was lost before the request body was read",
    "missing-idempotency-key": "Idempotency-Key header is required",
    "unknown-source": "Unknown source system",
    "unknown-partner": "Unknown partner",
    "unknown-service": "Unknown service item for this partner",
    "unknown-key": "No application was filed under that key",
    "idempotency-conflict": "Idempotency key reused with a different request",
    "journal-unavailable": "The journal cannot accept applications right now",
    "journal-damaged": "A record in the journal does not read as it was written",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "internal-error": "Internal error",
    "not-ready": "Not ready",
    "unauthenticated": "A partner key is required",
    "mapping-failed": "The application does not map into the local format",
    "ambiguous": "More than one exchange matches",
    "no-correction-requested": "The partner has not asked for more material",
    "not-delivered": "The application has not been delivered yet",
    "not-outbound": "The exchange was filed by a partner",
    "not-inbound": "The exchange was sent to a partner",
    "supplement": "The exchange is a supplement",
    "lifecycle-out-of-order": "A lifecycle step out of order",
    "lifecycle-busy": "Another lifecycle step is being recorded",
    "forbidden": "That key may not do this",
    "invalid-configuration": "The new configuration is invalid",
    "invalid-query": "The query is not understood",
    "confirmation-required": "A bulk replay must be confirmed",
    "body-timeout": "The request body stalled and was cut",
    "bad-request": "The request is not well-formed HTTP",
    "headers-too-large": "The request's headers are larger than the limit",
    "signature-invalid": "The call's signature, timestamp or nonce is not valid",
    "signature-unverifiable": "The partner's signing secret is not available to check the call",
    "reveal-refused": "Showing personal data in clear needs a role allowed to and a reason",
}


STATUS = {
    RefusalKind.INVALID: 400,
    RefusalKind.UNAUTHENTICATED: 401,
    RefusalKind.FORBIDDEN: 403,
    RefusalKind.NOT_FOUND: 404,
    RefusalKind.CONFLICT: 409,
    RefusalKind.TOO_LARGE: 413,
    RefusalKind.UNSUPPORTED: 415,
    RefusalKind.UNPROCESSABLE: 422,
    RefusalKind.UNAVAILABLE: 503,
}
_KIND = {status: kind for kind, status in STATUS.items()}
# Statuses the edge answers that have no kind of their own in the domain (a stalled body: 408;
# a journal record that does not read: 500, the server's side, as a SOAP edge says it); any
# other (aiohttp's own 405, 411, …) is the client's request not taken as sent: INVALID.
_NEAREST = {408: RefusalKind.INVALID, 431: RefusalKind.TOO_LARGE, 500: RefusalKind.UNAVAILABLE}


class ProblemError(RequestRefused):
    """A refusal the HTTP edge raises itself (body too large, wrong media type, bad key), by
    status; the runtime raises :class:`RequestRefused` and the edge answers both alike."""

    def __init__(self, status: int, slug: str, detail: str, **extra: Any) -> None:
        kind = _KIND.get(status) or _NEAREST.get(status, RefusalKind.INVALID)
        super().__init__(kind, slug, detail, **extra)
        self.status = status


def status_of(exc: RequestRefused) -> int:
    """The HTTP status that answers a refusal."""
    if isinstance(exc, ProblemError):
        return exc.status
    return STATUS[exc.kind]


def problem_response(
    status: int,
    slug: str,
    detail: str,
    *,
    instance: str | None = None,
    accept_language: str | None = None,
    **extra: Any,
) -> web.Response:
    """RFC 9457 problem details; the title in the caller's Accept-Language (简体, 繁體, English):
    ``accept_language``, else that of the request being answered (:data:`ACCEPT_LANGUAGE`)."""
    wanted = ACCEPT_LANGUAGE.get() if accept_language is None else accept_language
    title, language = problem_title(TITLES.get(slug, slug.replace("-", " ").capitalize()), wanted)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = {"Content-Language": language}
    if status == 503:
        headers["Retry-After"] = "5"
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tongban"'
    return web.Response(
        status=status, body=orjson.dumps(body), content_type=CONTENT_TYPE, headers=headers
    )
