"""REST partners: a JSON POST per attempt over one aiohttp session per partner.

Classification (documented in docs/delivery.md): 2xx delivered; 408, 425, 429 and 5xx transient (with
``Retry-After`` honoured); a 3xx, never followed, an unknown outcome (:mod:`adapters.httpio`); any
other status permanent. A connection that could not be opened is transient; a failure after the
request was written (timeout, reset, disconnect) is an unknown outcome.
A partner with reply rules (``reply:``) is judged by them first (:mod:`adapters.replies`): then a 2xx
answer is delivered only when the rules call it a success. Without rules, a 2xx whose body is not
JSON is an unknown outcome (retried with the same key), not a yes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from adapters.auth.credentials import Credentials
from adapters.auth.scrub import Scrubber
from adapters.base import TRANSCRIPT_BODY_LIMIT, Adapter, OutboundRequest, Reply
from adapters.httpio import Answer, exchange, partner_session, received, status_refusal
from adapters.replies import judge, rule_refusal
from federation.config import Partner
from federation.config.auth import parse_auth
from federation.config.reader import Reader
from federation.config.replies import ReplyRules
from federation.config.secrets import literal_credential
from federation.config.yamlsrc import PathKey
from federation.domain.errors import Transcript, UnknownOutcomeError, UnrecognisedReply
from federation.domain.media import charset_of
from federation.domain.models import canonical_json
from federation.domain.strictjson import DuplicateKey, loads
from federation.domain.texts import said

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
HEADER_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
PATH_RE = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
REPLY_LIMIT = 1024 * 1024
# Header values that must never reach the journal.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie"})


@dataclass(frozen=True, kw_only=True)
class RestOptions:
    idempotency_header: str = "Idempotency-Key"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RestService:
    path: str = ""
    method: str = "POST"
    supplement_path: str | None = (
        None  # follow-ups of a correction round (default: path/supplements)
    )
    status_path: str | None = None  # where to ask how an application stands (polling)
    poll_every: float | None = None  # ask that often, for partners that cannot call back


_PLAIN = RestService()  # a service item without rest: keys (made once, not per attempt)


class RestSpec:
    """partners.yaml keys for ``protocol: rest``."""

    name = "rest"
    service_keys: tuple[str, ...] = (
        "path",
        "method",
        "supplement_path",
        "status_path",
        "poll_every",
        "auth",  # this service item's credentials instead of the partner's (config/auth.py)
    )

    def parse_partner(self, r: Reader, path: PathKey, raw: Any, base: Path) -> Mapping[str, Any]:
        m = r.mapping(path, raw, optional=("idempotency_header", "headers"))
        if m is None:
            return {"rest": RestOptions()}
        header = RestOptions.idempotency_header
        if "idempotency_header" in m:
            header = (
                r.text(
                    (*path, "idempotency_header"),
                    m["idempotency_header"],
                    pattern=HEADER_RE,
                    what=said("an HTTP header name"),
                )
                or header
            )
        headers: dict[str, str] = {}
        hm = r.mapping((*path, "headers"), m.get("headers", {}), extra_ok=True) or {}
        for k, v in hm.items():
            if not HEADER_RE.fullmatch(k):
                r.error((*path, "headers", k), said("not an HTTP header name"))
            elif literal_credential(r, (*path, "headers", k), k):
                pass  # said, without the value
            elif (value := r.text((*path, "headers", k), v)) is not None:
                headers[k] = value
        return {"rest": RestOptions(idempotency_header=header, headers=headers)}

    def parse_service(self, r: Reader, path: PathKey, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        svc = RestService()

        def url_path(key: str) -> str | None:
            return r.text(
                (*path, key), raw[key], pattern=PATH_RE, what=said("a URL path starting with /")
            )

        sub = url_path("path") if "path" in raw else ""
        method = (
            r.choice((*path, "method"), raw["method"], ("POST", "PUT"))
            if "method" in raw
            else "POST"
        )
        supplement = url_path("supplement_path") if "supplement_path" in raw else None
        status_path = url_path("status_path") if "status_path" in raw else None
        every = (
            r.duration((*path, "poll_every"), raw["poll_every"], low=0.05, high=7 * 86400)
            if "poll_every" in raw
            else None
        )
        if (status_path is None) != (every is None):
            r.error(
                path,
                said(
                    "status_path and poll_every go together (polling asks status_path that often)"
                ),
            )
        base = Path(r.doc.file).resolve().parent  # partners.yaml's directory, for {file:…}
        auth = parse_auth(r, (*path, "auth"), raw["auth"], base) if "auth" in raw else None
        return {
            **({"auth": auth} if auth is not None else {}),
            "rest": RestService(
                path=sub or svc.path,
                method=method or svc.method,
                supplement_path=supplement,
                status_path=status_path,
                poll_every=every,
            ),
        }

    def create(self, partner: Partner) -> Adapter:
        return RestAdapter(partner)

    def target_tree(
        self, partner: Partner, service: str, kind: str = "application"
    ) -> tuple[str, set[str], set[str]] | None:
        return None  # REST partners describe their requests with a JSON Schema, if at all


REST = RestSpec()


class RestAdapter:
    """Delivers mapped requests to one REST partner."""

    def __init__(self, partner: Partner) -> None:
        self.partner = partner
        self.options: RestOptions = partner.options.get("rest", RestOptions())
        self._session: aiohttp.ClientSession | None = None
        self.credentials = Credentials(partner)  # auth: in partners.yaml (adapters/auth)

    async def start(self) -> None:
        self._session = partner_session(
            self.partner,
            self.credentials.ssl_context(),
            json_serialize=lambda v: orjson.dumps(v).decode(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, request: OutboundRequest) -> Reply:
        """POST the mapped request as JSON; read the reply (see the module docstring)."""
        if self._session is None:
            raise RuntimeError("RestAdapter.send() before start()")
        service = self.partner.services[request.service]
        svc: RestService = service.options.get("rest", _PLAIN)
        url = self._url(svc, request.kind)
        body = canonical_json(request.payload)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            self.options.idempotency_header: request.idempotency_key,
            "X-Tongban-Exchange-Id": request.exchange_id,
            "X-Tongban-Attempt": str(request.attempt),
            **({"traceparent": request.traceparent} if request.traceparent else {}),
            **self.options.headers,
        }
        # a partner that quotes a credential back (a 401 naming the token) is kept without it
        scrub = Scrubber()
        with scrub.errors():
            sent, answer = await self._signed(
                request.service, svc.method, url, headers, body, scrub
            )
            reply = classify(self.partner.id, request.service, sent, answer, service.reply)
        return scrub.reply(reply)

    async def _signed(
        self,
        service: str,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        scrub: Scrubber,
    ) -> tuple[dict[str, Any], Answer]:
        """Send with this attempt's credentials (signed now); after a 401 to an OAuth2 token,
        once more with a new token. The transcript keeps no secret and no signature; ``scrub``
        learns every credential sent."""
        assert self._session is not None
        for _ in range(2):
            applied = await self.credentials.apply(
                self._session, service=service, method=method, url=url, headers=headers, body=body
            )
            if applied.secrets:
                scrub.learn(applied.secrets)
            shown = {**headers, **applied.shown_headers}
            sent = {
                "method": method,
                "url": applied.shown_url,
                "headers": {
                    k: ("<redacted>" if k.lower() in _SECRET_HEADERS else v)
                    for k, v in shown.items()
                },
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "body_bytes": len(body),
            }
            answer = await exchange(
                self._session,
                method,
                applied.url,
                data=body,
                headers={**headers, **applied.headers},
                partner=self.partner,
                operation=service,
                sent=sent,
                limit=REPLY_LIMIT,
            )
            if answer.status != 401 or not self.credentials.refused(applied):
                break
        return sent, answer

    def _url(self, svc: RestService, kind: str) -> str:
        """Where a request of ``kind`` (application, supplement, status) goes."""
        path = svc.path
        if kind == "supplement":
            path = svc.supplement_path or f"{svc.path.rstrip('/')}/supplements"
        elif kind == "status":
            path = svc.status_path or f"{svc.path.rstrip('/')}/status"
        return self.partner.endpoint.rstrip("/") + path if path else self.partner.endpoint


def classify(
    pid: str,
    operation: str,
    sent: dict[str, Any],
    answer: Answer,
    rules: ReplyRules | None = None,
) -> Reply:
    """What a REST reply means: the parsed body of a success, else an adapter error.

    In steps: the reply is recorded for the transcript; its body read (:func:`read_json`); the
    partner's reply rules, if any, judge it (:func:`adapters.replies.judge`); where they say
    nothing, its HTTP status is classified (:func:`transient_status`). A success status whose
    body cannot be read for certain (:class:`Unreadable`) is never a yes, rules or not.
    """
    transcript = Transcript(request=sent, response=received(answer, TRANSCRIPT_BODY_LIMIT))
    status = answer.status
    try:
        body, problem = read_json(answer.body, answer.content_type)
    except Unreadable as exc:
        if 200 <= status < 300:  # whatever it says, it cannot be the partner's yes
            raise unreadable_reply(exc, pid, operation, transcript, status) from None
        body, problem = None, str(exc)  # a no all the same: its status decides below
    if rules is not None:
        verdict = judge(rules, status=status, body=body)
        if verdict is not None and verdict.kind != "success":
            raise rule_refusal(
                verdict,
                partner=pid,
                operation=operation,
                transcript=transcript,
                status=status,
                retry_after=answer.retry_after,
            )
    if not 200 <= status < 300:
        raise status_refusal(
            transient=transient_status(status),
            said=_summarise(body, answer.body),
            partner=pid,
            operation=operation,
            transcript=transcript,
            status=status,
            retry_after=answer.retry_after,
        )
    if problem is not None and rules is None:
        # not the partner's JSON yes (a proxy's or gateway's page, a cut-off reply): whether it
        # took the request is unknown; retried with the same key. No body at all (204, 202) is
        # HTTP's own "done, nothing to say" and stays a yes.
        raise UnknownOutcomeError(
            f"{pid} answered HTTP {status} but the {problem}; it may have processed the request",
            partner=pid,
            operation=operation,
            transcript=transcript,
            status=status,
        )
    # with rules that call it a success, a body that is not JSON is delivered, its problem noted
    return Reply(status=status, body=body, transcript=transcript, problem=problem)


def transient_status(status: int) -> bool:
    """Whether an HTTP status that is no success is worth retrying (408, 425, 429, some 5xx)."""
    return status in TRANSIENT_STATUS


class Unreadable(Exception):
    """A reply that cannot be read for certain: declared in a charset other than UTF-8, or
    naming a key twice in one object (``{"resultCode": "E9", "resultCode": "0"}``)."""


def read_json(raw: bytes, content_type: str = "") -> tuple[Any, str | None]:
    """The JSON of a reply body (None when empty), or None and why it is not JSON; raises
    :class:`Unreadable` for a body that could be read in more than one way."""
    charset = charset_of(content_type)
    if charset is not None and charset != "utf-8":
        raise Unreadable(f"reply is declared in charset {charset!r}, and only UTF-8 is read")
    try:
        return (loads(raw) if raw else None), None
    except orjson.JSONDecodeError as exc:
        return None, f"reply is not JSON: {exc}"
    except DuplicateKey as exc:
        raise Unreadable(f"reply is ambiguous: {exc}") from None


def unreadable_reply(
    exc: Unreadable, pid: str, operation: str, transcript: Transcript, status: int
) -> UnrecognisedReply:
    """The error for a success status whose body cannot be read for certain: never a yes, and
    not retried by itself (the partner would answer the same); the attempt's outcome unknown."""
    return UnrecognisedReply(
        f"{pid} answered HTTP {status}, but the {exc}: whether it took the request is unknown; "
        "see the reply in the attempt, then replay it or settle it with the partner",
        partner=pid,
        operation=operation,
        transcript=transcript,
        status=status,
    )


def _summarise(data: Any, raw: bytes) -> str | None:
    """What an error reply says, short and on one line (problem details 'detail' or the text):
    the partner's words, None when it said none."""
    if data is None:
        text = raw[:200].decode("utf-8", errors="replace").strip()
        return " ".join(text.split()) or None
    if isinstance(data, dict):
        for key in ("detail", "message", "msg", "error", "title"):
            if isinstance(data.get(key), str):
                return data[key][:200] or None
    return None
