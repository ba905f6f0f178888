"""SOAP partners: the WSDL's operation per service item, one envelope per attempt over aiohttp.

The WSDL (a repository file, never fetched) is loaded once, off the event loop, and each service
item's operation compiled (:mod:`adapters.wsdl`, :mod:`adapters.envelope`). zeep supplies the type
information; aiohttp the transport, one session per partner. Every attempt carries the exchange's
idempotency key in the SOAP header element named in partners.yaml, or at the header or body path
it names; the header parts the WSDL declares are filled from partners.yaml, a profile (X-Road) and
the mapping's ``headers:`` section (:mod:`adapters.headerplan`). WSDL imports of network locations
are read through the schema catalogue of partners.yaml, never fetched.

Classification: a SOAP Client/Sender fault (and VersionMismatch, MustUnderstand, or a code the
partner defines) is permanent; a Server/Receiver fault is transient. Without a fault: 2xx delivered;
408, 425, 429 and 5xx transient (``Retry-After`` honoured); a 3xx, never followed, an unknown
outcome (:mod:`adapters.httpio`); any other status permanent. A connection that could not be opened
is transient; a failure after the request was written is an unknown outcome.
A 2xx reply that cannot be trusted (too large, not XML, refused by the hardened parser, not a SOAP
envelope) or that holds no answer (an empty body or Body, another element than the operation's
output, the other SOAP version's envelope; unless the partner's reply rules call it a yes) is an
unknown outcome too: the partner may well have processed the request, so the exchange
must neither be marked delivered nor rejected; it is retried with the same idempotency key, and a
partner that keeps answering garbage runs out the retry policy and ends ``failed`` for an operator.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping

import aiohttp
from lxml import etree  # type: ignore[import-untyped]

from adapters import xmlsafe
from adapters.auth import REDACTED
from adapters.auth.credentials import Credentials, not_sent
from adapters.auth.scrub import Scrubber
from adapters.auth.wssig import sign_or_hold
from adapters.base import TRANSCRIPT_BODY_LIMIT, OutboundRequest, Reply
from adapters.body import BodyInvalid
from adapters.envelope import SOAP11, VERSIONS, SoapVersion
from adapters.facets import with_facets
from adapters.headerplan import (
    HeaderPlan,
    SecretUnfit,
    plan_for,
)
from adapters.httpio import exchange, partner_session, received
from adapters.soapheaders import HeaderPathError, KeyPath, dotted
from adapters.soapoptions import (
    PASSWORD_TEXT,
    WSSE_NS,
    SoapOptions,
    SoapService,
)
from adapters.soapreply import classify
from adapters.wsdl import (
    Operation,
    Port,
    WsdlError,
    compile_operation,
    find_port,
    input_tree,
)
from adapters.wsdl import load_document as load_wsdl
from adapters.xroad import with_fault_rules
from adapters.xsdtypes import BadValue, escape
from federation.config import Partner
from federation.config.headers import EXCHANGE_KEY, HEADERS_KEY
from federation.config.replies import ReplyRules
from federation.config.secrets import SHARED, SecretError, off_loop, read_texts
from federation.domain.errors import ConfigError, NotSendable, Problem, Transcript
from federation.domain.texts import Text

REPLY_LIMIT = xmlsafe.REPLY_LIMITS.max_bytes


KINDS = ("application", "status", "supplement")


def compile_partner(partner: Partner) -> dict[tuple[str, str], Operation]:
    """Every service item's operations by (service, kind), compiled; blocking (WSDL loading), so
    run it in a thread."""
    options: SoapOptions = partner.options["soap"]
    port = wsdl_port(options)
    header = etree.QName(options.idempotency_header)
    version = VERSIONS[options.version]
    out: dict[tuple[str, str], Operation] = {}
    for code, service in partner.services.items():
        svc: SoapService = service.options["soap"]
        for kind in KINDS:
            name = svc.operation_for(kind)
            if name is not None:
                action = svc.soap_action if kind == "application" else None
                out[code, kind] = compile_operation(
                    port, name, action=action, header=header, version=version
                )
    return out


def compile_plans(
    partner: Partner, operations: Mapping[tuple[str, str], Operation]
) -> dict[tuple[str, str], HeaderPlan]:
    """The header plan of each compiled operation that declares header parts; HeaderPathError if
    partners.yaml's header settings do not fit one (the config loader has reported that)."""
    options: SoapOptions = partner.options["soap"]
    port = wsdl_port(options)
    out: dict[tuple[str, str], HeaderPlan] = {}
    for (code, kind), op in operations.items():
        if op.headers:
            svc: SoapService = partner.services[code].options["soap"]
            out[code, kind] = _plan(options, svc, op, port)
    return out


def _plan(options: SoapOptions, svc: SoapService, op: Operation, port: Port) -> HeaderPlan:
    body_paths = input_tree(port, op.name)[0] if options.headers.key_body else set()
    return plan_for(
        options.headers, op.headers, operation=op.name, body_paths=body_paths, item=svc.xroad
    )


def wsdl_port(options: SoapOptions) -> Port:
    """The partner's WSDL port (loaded from the cache when the config loader already read it)."""
    document = load_wsdl(options.wsdl, options.root, options.schemas)
    return find_port(document, options.service, options.port)


def username_token(username: str, password: str, version: SoapVersion) -> str:
    """A WS-Security header block with a UsernameToken (PasswordText: send it over TLS only)."""
    must = "1" if version is SOAP11 else "true"
    return (
        f'<wsse:Security xmlns:wsse="{WSSE_NS}" soap-env:mustUnderstand="{must}">'
        f"<wsse:UsernameToken><wsse:Username>{escape(username)}</wsse:Username>"
        f'<wsse:Password Type="{PASSWORD_TEXT}">{escape(password)}</wsse:Password>'
        "</wsse:UsernameToken></wsse:Security>"
    )


class SoapAdapter:
    """Delivers mapped requests to one SOAP partner."""

    def __init__(self, partner: Partner) -> None:
        self.partner = partner
        self.options: SoapOptions = partner.options["soap"]
        self._session: aiohttp.ClientSession | None = None
        self._operations: dict[tuple[str, str], Operation] = {}
        self._plans: dict[tuple[str, str], HeaderPlan] = {}
        self.credentials = Credentials(partner)  # auth: client_cert, ws_signature (adapters/auth)
        self._rules: dict[str, ReplyRules | None] = {
            code: s.reply for code, s in partner.services.items()
        }
        if self.options.headers.profile is not None:  # X-Road's fault codes, unless reply: says
            self._rules = {code: with_fault_rules(r) for code, r in self._rules.items()}

    async def start(self) -> None:
        try:
            args = (self.options.wsdl, compile_partner, self.partner)  # facets checked on write
            self._operations = await asyncio.to_thread(with_facets, *args)
            self._plans = await asyncio.to_thread(compile_plans, self.partner, self._operations)
        except (WsdlError, HeaderPathError) as exc:
            text = getattr(exc, "text", None)  # a header path's message stays English
            problem = Problem(
                message=str(exc),
                text=text if isinstance(text, Text) else None,
                path=f"partners.{self.partner.id}.soap.wsdl",
            )
            raise ConfigError([problem]) from exc
        self._session = partner_session(self.partner, self.credentials.ssl_context())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, request: OutboundRequest) -> Reply:
        """POST the request's SOAP envelope to the partner; classify the reply (soapreply)."""
        if self._session is None:
            raise RuntimeError("SoapAdapter.send() before start()")
        op = self._operation(request)
        plan = self._plans.get((request.service, request.kind))
        url = self.partner.endpoint
        data, digest_of, read = await self._message(op, plan, request, url)
        signature = self.partner.auth.ws_signature if self.partner.auth else None
        headers = {
            **op.http_headers,
            "X-Tongban-Exchange-Id": request.exchange_id,
            "X-Tongban-Attempt": str(request.attempt),
        }
        if request.traceparent:  # W3C trace context: SOAP stacks that do not know it ignore it
            headers["traceparent"] = request.traceparent
        # auth: bearer, api_key, oauth2, signing; without a scheme, nothing to ask per attempt
        creds, svc = self.credentials, request.service
        applied = creds.without_auth(svc, url) or await creds.apply(
            self._session, service=svc, method="POST", url=url, headers=headers, body=data
        )
        sent = {
            "method": "POST",
            "url": applied.shown_url,
            "operation": op.name,
            "soap_version": op.version.name,
            "headers": {**headers, **applied.shown_headers} if applied.shown_headers else headers,
            "body_sha256": hashlib.sha256(digest_of).hexdigest(),
            "body_bytes": len(data),
        }
        of = []
        if plan is not None and plan.secrets:  # soap: headers: given by reference
            sent["soap_headers"] = {dotted(path): REDACTED for path, _ in plan.secrets}
            of.append("without its header blocks that carry secrets")
        if self.options.ws_security is not None:
            of.append("with the WS-Security password redacted")
        if of:
            sent["body_sha256_of"] = "envelope " + ", ".join(of)
        if signature is not None:
            sent["ws_signature"] = "X.509 over Body and Timestamp; the digest is of the unsigned"
        scrub = Scrubber((*read, *applied.secrets))  # a partner may quote them back (a fault)
        with scrub.errors():
            answer = await exchange(
                self._session,
                "POST",
                applied.url,
                data=data,
                headers={**headers, **applied.headers} if applied.headers else headers,
                partner=self.partner,
                operation=op.name,
                sent=sent,
                limit=REPLY_LIMIT,
            )
            got = received(answer, TRANSCRIPT_BODY_LIMIT)
            rules = self._rules.get(request.service)  # the partner's reply: rules (and profile's)
            pid, raw = self.partner.id, answer.body
            reply = classify(pid, op, sent, got, raw, answer.status, answer.retry_after, rules)
        return scrub.reply(reply)

    def _operation(self, request: OutboundRequest) -> Operation:
        """The WSDL operation for the request's service and kind; permanent if there is none."""
        op = self._operations.get((request.service, request.kind))
        if op is None:
            pid = self.partner.id
            what = "" if request.kind == "application" else f" with a {request.kind} operation"
            raise NotSendable(
                f"service {request.service!r} is not configured for {pid}{what}",
                partner=pid,
                operation=request.service,
            )
        return op

    async def _message(
        self, op: Operation, plan: HeaderPlan | None, request: OutboundRequest, url: str
    ) -> tuple[bytes, bytes, list[str]]:
        """:meth:`_envelope` with the header values given by reference and the WS-Security
        password read now (a rotated secret applies to the next attempt; in a thread if one is a
        file), signed afresh if ``auth: ws_signature:`` says (a new Timestamp; in a thread: it
        reads the key's file). A secret that cannot be read holds the exchange, naming the
        reference: never sent without it."""
        security = self.options.ws_security
        refs = [ref for _, ref in plan.secrets] if plan is not None else []
        if security is not None:
            refs.append(security.password)
        try:  # files in threads of their own folders; most attempts read none
            texts = await read_texts(refs) if refs else []
        except SecretError as exc:
            raise not_sent(exc, self.partner.id, op.name, "POST", url) from None
        paths = [path for path, _ in plan.secrets] if plan is not None else []
        headers = list(zip(paths, texts[: len(paths)], strict=True))
        password = texts[-1] if security is not None else ""
        data, digest_of, secrets = self._envelope(op, plan, request, url, headers, password)
        signature = self.partner.auth.ws_signature if self.partner.auth else None
        if signature is not None:
            args = (data, signature, op.version, self.partner.id, op.name)
            key = signature.key  # signed in its folder's threads: a hung key mount holds its own
            folder = key.folder if key.kind == "file" else SHARED
            try:
                data = await off_loop(lambda: sign_or_hold(*args), folder=folder, what=str(key))
            except SecretError as exc:  # the key file's read hung: held, as one that fails
                why = f"WS-Security signature: {exc}"
                raise not_sent(why, self.partner.id, op.name, "POST", url) from None
        return data, digest_of, secrets

    def _envelope(
        self,
        op: Operation,
        plan: HeaderPlan | None,
        request: OutboundRequest,
        url: str,
        secrets: list[tuple[KeyPath, str]],
        password: str,
    ) -> tuple[bytes, bytes, list[str]]:
        """The envelope to send, the bytes its transcript digest is of, and the secrets read.

        The two differ only with secrets in the envelope: the digest is of the envelope without
        the header blocks that carry a header value given by reference, and with the WS-Security
        password redacted, since a digest of the real bytes would let anyone holding the journal
        test guesses offline (never by replacing the secret's text: an attribute's escaping or a
        type's normalisation, 0042 written 42, would leave it in).
        """
        payload = request.payload
        security = self.options.ws_security
        try:
            if (plan is None or plan.plain) and not (
                HEADERS_KEY in payload or EXCHANGE_KEY in payload
            ):
                body = op.input.write(payload)  # the common case: the key header only
                blocks = [f"<{op.header_name}>{escape(request.idempotency_key)}</{op.header_name}>"]
                shown = blocks
            else:
                body, blocks, shown = self._with_headers(op, plan, request, secrets)
        except SecretUnfit as exc:  # our configuration's fault (a rotated secret): held
            raise not_sent("; ".join(exc.problems), self.partner.id, op.name, "POST", url) from None
        except (BodyInvalid, BadValue) as exc:
            # Nothing was sent: the mapping produced something the WSDL does not allow.
            problems = exc.problems if isinstance(exc, BodyInvalid) else [f"idempotency key: {exc}"]
            raise NotSendable(
                f"the request does not match the WSDL input of {op.name}: {'; '.join(problems)}",
                partner=self.partner.id,
                operation=op.name,
                transcript=Transcript(
                    request={"url": url, "operation": op.name, "problems": problems}
                ),
            ) from None
        if security is None:
            data = op.envelope.render(blocks, body)
            digest_of = data if shown == blocks else op.envelope.render(shown, body)
        else:  # the password never logged or journalled: the digest is of the block without it
            user = security.username
            token = username_token(user, password, op.version)
            data = op.envelope.render([*blocks, token], body)
            digest_of = op.envelope.render(
                [*shown, username_token(user, REDACTED, op.version)], body
            )
        read = [secret for _, secret in secrets]
        return data, digest_of, [*read, password] if security is not None else read

    def _with_headers(
        self,
        op: Operation,
        plan: HeaderPlan | None,
        request: OutboundRequest,
        secrets: list[tuple[KeyPath, str]],
    ) -> tuple[str, list[str], list[str]]:
        """Body and header blocks of a message whose headers partners.yaml or the mapping fill,
        and the blocks without those that carry secrets (HeaderPlan.filled)."""
        if plan is None:  # the mapping writes headers the operation does not declare
            raise BodyInvalid([f"{HEADERS_KEY}: operation {op.name} declares no SOAP header parts"])
        payload, blocks, shown = plan.filled(request, request.payload, secrets)
        if plan.legacy:
            key = escape(request.idempotency_key)
            blocks = [*blocks, f"<{op.header_name}>{key}</{op.header_name}>"]
            shown = [*shown, blocks[-1]]
        return op.input.write(payload), blocks, shown
