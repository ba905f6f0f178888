"""What every HTTP-based adapter needs when reading a partner's reply.

Replies are untrusted: the body is read within a limit *after* decompression (a gzip bomb is
refused, not inflated), and ``Retry-After`` is understood in both its forms.

An adapter reads a reply in three steps: :func:`exchange` reads the answer (and turns transport
failures into adapter errors), :func:`received` records it for the transcript, then the adapter
classifies the HTTP status (:func:`status_refusal` builds the error for one that is no success)
and, for a success, the body.

Redirects are never followed: following one would send the application (and every header, the
idempotency key and credentials included) to a host partners.yaml does not name, and after a 301,
302 or 303 HTTP clients repeat a POST as a GET without its body, so a 200 from wherever it led
would read as a yes nobody gave. :func:`exchange` answers a 3xx itself with an unknown outcome
(:func:`redirected`): the partner's endpoint moved or a gateway misbehaves, and whether anything
behind it took the request is not known (a 303 typically follows processing). It is retried with
the same idempotency key as the partner's retry policy says, so a gateway that recovers or an
endpoint an operator corrects in partners.yaml takes it; otherwise the exchange ends ``failed``,
where support staff find it and replay it. The status and the Location (its query masked) are in
the attempt's record and in ``last_error``.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

from adapters.auth import REDACTED
from federation.config import Partner
from federation.domain.errors import (
    PermanentError,
    Transcript,
    TransientError,
    UnknownOutcomeError,
)


def partner_session(
    partner: Partner, ssl_context: ssl.SSLContext | None = None, **extra: Any
) -> aiohttp.ClientSession:
    """The one client session an adapter keeps per partner: its concurrency and its timeouts,
    and its client certificate (``ssl_context``) when partners.yaml gives one."""
    t = partner.timeouts
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=partner.concurrency,
            limit_per_host=partner.concurrency,
            ssl=ssl_context if ssl_context is not None else True,
        ),
        timeout=aiohttp.ClientTimeout(total=t.total, connect=t.connect, sock_read=t.read),
        auto_decompress=True,
        raise_for_status=False,
        **extra,
    )


class ReplyTooLarge(Exception):
    pass


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, decompressed, but never more than ``limit`` bytes of it held.

    ``Content-Length`` counts compressed bytes, so it only settles the matter for identity
    encoding; otherwise the body is streamed (aiohttp inflates in bounded chunks) and counted.
    """
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    length = resp.content_length
    if length is not None and encoding == "identity":
        if length > limit:
            raise ReplyTooLarge()
        return await resp.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ReplyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True, kw_only=True)
class Answer:
    """A partner's HTTP answer, read within the limit."""

    status: int
    content_type: str
    body: bytes
    retry_after: float | None
    location: str | None = None  # a redirect's Location header, as sent


async def exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    data: bytes,
    headers: Mapping[str, str],
    partner: Partner,
    operation: str,
    sent: Mapping[str, Any],
    limit: int,
) -> Answer:
    """Send one request and read the answer; transport failures and redirects become adapter
    errors.

    Nothing sent (refused, unreachable, connect timeout) is transient; a failure after the request
    was written (timeout, reset, a reply over the limit) is an unknown outcome: the partner may
    have processed it, so it is retried with the same idempotency key. A redirect is not
    followed (module docstring): it is an unknown outcome too (:func:`redirected`).
    """
    try:
        async with session.request(
            method, url, data=data, headers=headers, allow_redirects=False
        ) as resp:
            body = await read_bounded(resp, limit)
            got = resp.headers
            answer = Answer(
                status=resp.status,
                content_type=got.get("Content-Type", ""),
                body=body,
                retry_after=retry_after_seconds(got.get("Retry-After")),
                location=got.get("Location"),
            )
    except (aiohttp.ClientError, OSError, TimeoutError, ReplyTooLarge) as exc:
        raise transport_error(exc, partner, operation, sent, limit) from exc
    if is_redirect(answer.status):
        raise redirected(answer, url, partner.id, operation, sent, limit)
    if not 100 <= answer.status <= 599:
        raise undefined_status(answer, partner.id, operation, sent, limit)
    return answer


def is_redirect(status: int) -> bool:
    """A 3xx status: an answer that points elsewhere instead of saying anything."""
    return 300 <= status < 400


def shown_location(location: str | None, base: str) -> str:
    """Where a redirect points, for the journal and logs: resolved against the request's URL,
    with its query (tokens, signatures, names), fragment and user info masked, bounded."""
    if not location:
        return "no Location"
    try:
        target = URL(base).join(URL(location.strip()))
        shown = str(target.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "an unreadable Location"
    if target.raw_query_string or target.raw_fragment:
        shown += "?" + REDACTED
    return shown if len(shown) <= 300 else shown[:300] + "…"


def redirect_note(status: int, location: str | None, base: str) -> str:
    """``HTTP 307 redirecting to https://…`` for messages about a refused redirect."""
    where = shown_location(location, base)
    return f"HTTP {status} " + (f"redirecting to {where}" if location else f"with {where}")


def redirected(
    answer: Answer,
    url: str,
    partner: str,
    operation: str,
    sent: Mapping[str, Any],
    limit: int,
) -> UnknownOutcomeError:
    """The error for a redirect (never followed): an unknown outcome, naming status and target."""
    got = {**received(answer, limit), "location": shown_location(answer.location, url)}
    return UnknownOutcomeError(
        f"{partner} answered {redirect_note(answer.status, answer.location, url)}; redirects "
        "are not followed (if the endpoint moved, correct it in partners.yaml); it may have "
        "processed the request",
        partner=partner,
        operation=operation,
        transcript=Transcript(request=sent, response=got),
        status=answer.status,
        retry_after=answer.retry_after,
    )


def undefined_status(
    answer: Answer, partner: str, operation: str, sent: Mapping[str, Any], limit: int
) -> UnknownOutcomeError:
    """The error for a status HTTP does not define (RFC 9110 knows the classes 1xx to 5xx only):
    neither a yes nor a no, whatever the partner's reply rules say; an unknown outcome."""
    return UnknownOutcomeError(
        f"{partner} answered with HTTP status {answer.status}, which HTTP does not define (100 "
        "to 599); it may have processed the request",
        partner=partner,
        operation=operation,
        transcript=Transcript(request=sent, response=received(answer, limit)),
        status=answer.status,
        retry_after=answer.retry_after,
    )


def transport_error(
    exc: BaseException, partner: Partner, operation: str, sent: Mapping[str, Any], limit: int
) -> TransientError | UnknownOutcomeError:
    """The adapter error for a failed :func:`exchange`. Built here, only when one is raised: the
    transcript and the messages cost nothing on an attempt that got its answer."""
    pid = partner.id
    t = partner.timeouts
    common: dict[str, Any] = {
        "partner": pid,
        "operation": operation,
        "transcript": Transcript(request=sent),
    }
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Covers refused, unreachable and DNS failures: nothing was sent.
        return TransientError(f"cannot connect to {pid}: {exc.os_error.strerror or exc}", **common)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return TransientError(f"connecting to {pid} timed out after {t.connect:g}s", **common)
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return UnknownOutcomeError(
            f"{pid} did not answer in time (read {t.read:g}s, total {t.total:g}s); "
            "it may have processed the request",
            **common,
        )
    if isinstance(exc, ReplyTooLarge):
        return UnknownOutcomeError(
            f"{pid} sent a reply over {limit} bytes (after decompression); "
            "it may have processed the request",
            **common,
        )
    # aiohttp's words for a reply it cannot read quote the reply's bytes (a header line, the
    # status line), which can hold personal data: kept as the partner's words, masked for viewers
    # (federation.domain.words), never in the message
    said = " ".join(str(exc).split())[:300] or None
    return UnknownOutcomeError(
        f"connection to {pid} failed after sending: {type(exc).__name__} ({failure_words(exc)}); "
        "it may have processed the request",
        partner_message=said,
        **common,
    )


def failure_words(exc: BaseException, who: str = "the partner") -> str:
    """What went wrong with a request after it was sent, in our words, none of the reply's bytes
    (aiohttp's own words for a reply it cannot read quote them); ``who`` answers (the partner, a
    callback's receiver)."""
    if isinstance(exc, TimeoutError):
        return f"{who} did not answer in time"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{who} closed the connection before answering"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the reply's body was cut short or malformed"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "the reply was not valid HTTP"
    if isinstance(exc, OSError):
        return f"the connection failed ({exc.strerror or 'no reason given'})"
    return "the reply could not be read"


def received(answer: Answer, limit: int) -> dict[str, Any]:
    """The answer as the transcript keeps it: status, content type, body (first ``limit`` bytes)."""
    return {
        "status": answer.status,
        "content_type": answer.content_type,
        "body": answer.body[:limit].decode("utf-8", errors="replace"),
        "body_bytes": len(answer.body),
    }


def status_refusal(
    *,
    transient: bool,
    said: str | None,
    partner: str,
    operation: str,
    transcript: Transcript,
    status: int,
    retry_after: float | None,
    note: str = "",
) -> TransientError | PermanentError:
    """The error for an HTTP status that is no success. ``said`` sums up the reply's body in the
    partner's words: kept apart from the message as ``partner_message``, since it can quote the
    application (``federation.domain.words``); ``note`` is ours about the body."""
    what = f"HTTP {status}{note}"
    return refusal(
        transient=transient,
        message=f"{partner} answered {what}"
        if transient
        else f"{partner} refused the request with {what}",
        partner=partner,
        operation=operation,
        transcript=transcript,
        status=status,
        retry_after=retry_after,
        partner_message=said or None,
    )


def refusal(
    *,
    transient: bool,
    message: str,
    partner: str,
    operation: str,
    transcript: Transcript,
    status: int,
    retry_after: float | None,
    partner_code: str | None = None,
    partner_message: str | None = None,
) -> TransientError | PermanentError:
    """A transient error (retried, honouring ``retry_after``) or a permanent one (ends the exchange),
    with the partner's own code and message when it gave them (a SOAP fault's code and reason):
    ``message`` is ours alone, the partner's words are never folded into it."""
    common: dict[str, Any] = {
        "partner": partner,
        "operation": operation,
        "transcript": transcript,
        "status": status,
        "partner_code": partner_code,
        "partner_message": partner_message,
    }
    if transient:
        return TransientError(message, retry_after=retry_after, **common)
    return PermanentError(message, **common)
