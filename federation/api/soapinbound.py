"""SOAP inbound: partners whose systems speak SOAP file applications at ``/v1/partners/{p}/soap``.

``GET …/soap?wsdl`` serves the WSDL named by the partner's ``inbound.wsdl`` (partners.yaml) with its
``soap:address`` pointed at this endpoint. ``POST …/soap`` takes a SOAP 1.1 ``FileApplication``
(service, idempotencyKey, application as JSON text), authenticated like the REST endpoint with
``Authorization: Bearer <key>``, and goes through the same checks and journal as
:func:`federation.api.inbound.file_application`.

Every refusal is a SOAP 1.1 Fault (``Client`` for the caller's mistakes, ``Server`` when the journal
is unavailable or we failed) and is kept in the journal's refusals, with the problem slug and the
status the REST endpoint would have used. The HTTP status of every fault is 500: SOAP 1.1 §6.2 and
WS-I Basic Profile 1.1 (R1126) require it, and SOAP toolkits look for the Fault on a 500; the REST
status stays in the fault's detail (``problem/@status``) and in the refusal row.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree  # type: ignore[import-untyped]

from adapters import xmlsafe
from adapters.envelope import SOAP11, Envelope, NotSoap, escape_attr, open_envelope
from federation.api import signed
from federation.api.auth import filing_partner
from federation.api.edge import BROKER, Received, parsed, refusal_of
from federation.api.problems import PROBLEM_TYPE, ProblemError, status_of
from federation.domain.errors import RequestRefused
from federation.domain.media import charset_of
from federation.domain.models import Exchange
from federation.runtime.broker import Broker
from federation.runtime.filing import file_supplement, file_with
from federation.runtime.lifecycle import exchange_for, filed_by, lifecycle_of, record_lifecycle

NS = "urn:tongban:inbound:2026"
OPERATION = f"{{{NS}}}FileApplication"
REPORT = f"{{{NS}}}ReportStatus"
ASK = f"{{{NS}}}GetApplicationStatus"
SUPPLEMENT = f"{{{NS}}}FileSupplement"
FIELDS = ("service", "idempotencyKey", "application")
SOAP_ADDRESS = "{http://schemas.xmlsoap.org/wsdl/soap/}address"
MEDIA_TYPES = frozenset({"text/xml"})  # SOAP 1.1 over HTTP
# The charsets a request may declare: what the XML screen reads (adapters.xmlsafe: UTF-8, or UTF-16
# told by its byte order mark or its zero bytes), and only when the document agrees.
CHARSETS = frozenset({"utf-8", "utf-16", "utf-16le", "utf-16be"})
_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})  # ASCII is UTF-8's subset
_DECLARED = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_ENVELOPE = Envelope(SOAP11, {"tb": NS})


def setup(app: web.Application) -> None:
    """Register the SOAP inbound routes."""
    app.router.add_get("/v1/partners/{partner}/soap", wsdl)
    app.router.add_post("/v1/partners/{partner}/soap", file_application)
    if signed.NONCES not in app:
        app[signed.NONCES] = signed.NonceMemory()


async def wsdl(request: web.Request) -> web.Response:
    """The partner's inbound WSDL (any query, e.g. ``?wsdl``), its address set to this endpoint.

    The WSDL is a published contract and is served without a key; filing needs one.
    """
    broker = request.app[BROKER]
    pid = request.match_info["partner"]
    partner = broker.catalogue.partner(pid)
    path = partner.inbound.wsdl if partner is not None and partner.inbound is not None else None
    if path is None:
        raise ProblemError(404, "not-found", f"no partner {pid!r} files applications by SOAP here")
    data = await asyncio.to_thread(path.read_bytes)
    root = xmlsafe.parse(data, xmlsafe.WSDL_LIMITS)  # our own file, validated at start-up
    here = str(request.url.with_query(None))
    for address in root.iter(SOAP_ADDRESS):
        address.set("location", here)
    body = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    return web.Response(body=body, content_type="text/xml", charset="utf-8")


async def file_application(request: web.Request) -> web.Response:
    """FileApplication: authenticate, parse the envelope safely, then file as the REST path does."""
    broker = request.app[BROKER]
    pid = request.match_info["partner"]
    key: str | None = None
    got = Received(request)
    try:
        partner = filing_partner(request, broker, pid)
        body = await got.read(broker.catalogue.config.broker.max_body_bytes, MEDIA_TYPES, CHARSETS)
        check_charset(request.headers.get("Content-Type", ""), body)
        await signed.verify(request, partner, body)
        first = _body_element(body)
        check_action(request.headers.get("SOAPAction"), first.tag)
        if first.tag == REPORT:
            return await _report_status(broker, pid, first)
        if first.tag == ASK:
            return await _application_status(broker, pid, first)
        if first.tag == SUPPLEMENT:
            values = _fields(first, ("idempotencyKey", "supplementKey", "material"))
            key = values["supplementKey"]
            parent = await filed_by(broker.journal, pid, values["idempotencyKey"])
            material = _json_text(values["material"], "material")
            exchange, _ = await file_supplement(broker, parent, material, key, map_now=True)
            return _filed("FileSupplementResponse", exchange)
        service, key, application = _parse(first)
        exchange, _ = await file_with(
            broker,
            partner,
            service,
            application,
            key,
            missing_key="send idempotencyKey (1–255 visible ASCII characters), unique per "
            "application",
        )
    except Exception as exc:
        refused = refusal_of(exc)  # the journal down, a reused key …: a fault, journalled
        if refused is None:
            raise  # a failure of ours: the middleware's 500
        await got.refuse(broker, refused, key)
        return fault(refused)
    return _filed("FileApplicationResponse", exchange)


def _filed(element: str, exchange: Exchange) -> web.Response:
    """The answer to a filing: the exchange id and state, and where to follow it."""
    answer = (
        f"<tb:{element}>"
        f"<tb:exchangeId>{escape(exchange.id)}</tb:exchangeId>"
        f"<tb:state>{escape(exchange.state.value)}</tb:state>"
        f"</tb:{element}>"
    )
    return web.Response(
        body=_ENVELOPE.render([], answer),
        content_type="text/xml",
        charset="utf-8",
        headers={"Location": f"/v1/exchanges/{exchange.id}"},
    )


def check_charset(content_type: str, body: bytes) -> None:
    """A charset the Content-Type declares must be the document's own (its byte order mark, its
    XML declaration, else UTF-8): the parser reads the document's own, so a header that says
    otherwise would have the request read other than it was sent. Refused as a media type."""
    charset = charset_of(content_type)
    if charset is None:
        return
    written, told = document_encoding(body)
    if charset == "utf-8":
        agrees = written in _UTF8_NAMES
    else:  # utf-16, or one of its byte orders
        agrees = written == charset or (charset == "utf-16" and written.startswith("utf-16"))
    if not agrees:
        raise ProblemError(
            415,
            "unsupported-media-type",
            f"the Content-Type says charset {charset!r} but the document is {written} by its "
            f"{told}; send the charset the document is written in",
        )


def document_encoding(body: bytes) -> tuple[str, str]:
    """The encoding an XML document states for itself (lower case), and what states it."""
    for mark, name in ((b"\xff\xfe", "utf-16le"), (b"\xfe\xff", "utf-16be")):
        if body.startswith(mark):
            return name, "byte order mark"
    if body[:2] in (b"<\x00", b"\x00<"):
        return ("utf-16le" if body[:1] == b"<" else "utf-16be"), "zero bytes"
    if body.startswith(b"\xef\xbb\xbf"):
        return "utf-8", "byte order mark"
    if body.startswith(b"<?xml"):
        end = body.find(b"?>", 5, 256)
        declared = _DECLARED.search(body, 5, end) if end > 0 else None
        if declared is not None:
            return declared.group(1).decode("ascii").lower(), "XML declaration"
    return "utf-8", "lack of an encoding declaration"


def _body_element(body: bytes) -> Any:
    """The first element of a SOAP 1.1 Body (FileApplication, ReportStatus or
    GetApplicationStatus), parsed safely."""
    try:
        opened = open_envelope(xmlsafe.parse(body, xmlsafe.REPLY_LIMITS))
    except xmlsafe.XmlRefused as exc:
        slug = "malformed-xml" if exc.kind == "malformed" else "xml-refused"
        raise ProblemError(400, slug, f"the request was not parsed ({exc.kind}): {exc}") from None
    except NotSoap as exc:
        raise ProblemError(400, "invalid-request", str(exc)) from None
    if opened.version is not SOAP11:
        raise ProblemError(400, "version-mismatch", "this endpoint speaks SOAP 1.1 (text/xml) only")
    if opened.first is None or opened.first.tag not in (OPERATION, REPORT, ASK, SUPPLEMENT):
        got = etree.QName(opened.first).text if opened.first is not None else "an empty Body"
        raise ProblemError(
            400,
            "invalid-request",
            f"expected {OPERATION}, {SUPPLEMENT}, {REPORT} or {ASK} in the Body, got {got}",
        )
    others = [etree.QName(el).localname for el in _elements(opened.body)][1:]
    if others:  # one operation per request: a second one would be answered by no one
        raise ProblemError(
            400,
            "invalid-request",
            f"the Body holds {len(others) + 1} elements ({etree.QName(opened.first).localname}, "
            f"then {', '.join(others[:5])}); send one operation per request",
        )
    return opened.first


def _elements(parent: Any) -> list[Any]:
    """The child elements of ``parent`` (not its comments or processing instructions)."""
    return [child for child in parent if isinstance(child.tag, str)]


def check_action(header: str | None, operation: str) -> None:
    """The SOAPAction header must name the operation in the Body (WSDL ``soapAction``).

    SOAP 1.1 over HTTP requires the header (§6.1.1); WS-I Basic Profile R1109 has it quoted. An
    empty value (``""``) says nothing about intent and is accepted; a missing header or one that
    names another operation (a caller routed by action to one operation with the Body of another)
    is refused, so what the caller declared and what we do cannot differ.
    """
    if header is None:
        raise ProblemError(
            400,
            "soap-action-missing",
            "SOAP 1.1 requests need a SOAPAction header; send the operation's soapAction from the "
            f'WSDL: SOAPAction: "{_action(operation)}"',
        )
    value = header.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].strip()
    if value and value != _action(operation):
        raise ProblemError(
            400,
            "soap-action-mismatch",
            f"the SOAPAction header names {value[:200]!r} but the Body holds "
            f'{etree.QName(operation).localname}, whose soapAction is "{_action(operation)}"',
        )


def _action(operation: str) -> str:
    """The WSDL soapAction of one of our inbound operations (``urn:…:2026#FileApplication``)."""
    return f"{NS}#{etree.QName(operation).localname}"


def _fields(element: Any, names: tuple[str, ...]) -> dict[str, str]:
    """The text of each of an operation's fields, each sent once; any other element, or a field
    sent twice or holding elements, is refused with the rest (as the JSON intake refuses
    duplicate or unknown fields): what is not read must not be taken as read."""
    values: dict[str, str] = {}
    errors = _unread(element, names)
    for name in names:
        el = element.find(f"{{{NS}}}{name}")
        text = (el.text or "").strip() if el is not None else ""
        if not text and not any(e["path"] == name for e in errors):
            errors.append({"path": name, "message": "required text"})
        values[name] = text
    if errors:
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
        raise ProblemError(400, "invalid-request", detail, errors=errors)
    return values


def _unread(element: Any, names: tuple[str, ...]) -> list[dict[str, str]]:
    """What ``element`` holds beside one text-only element of each of ``names`` (in NS)."""
    operation = etree.QName(element).localname
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    for child in _elements(element):
        name = etree.QName(child)
        path = name.localname[:100]
        if name.namespace != NS or name.localname not in names:
            where = f"in {{{name.namespace[:100]}}}" if name.namespace else "without a namespace"
            message = f"not a field of {operation} ({where}); send only {', '.join(names)}"
        elif name.localname in seen:
            message = "sent more than once; send each field once"
        elif len(child):
            message = "holds elements; send its value as text"
        else:
            seen.add(name.localname)
            continue
        errors.append({"path": path, "message": message})
    stray = [element.text] + [child.tail for child in element]
    if any(text and text.strip() for text in stray):
        errors.append({"path": operation, "message": "holds text outside its fields"})
    return errors


def _json_text(text: str, what: str) -> dict[str, Any]:
    data = parsed(text, f"{what} (JSON text)")
    if not isinstance(data, dict):
        raise ProblemError(400, "invalid-request", f"{what} must be a JSON object")
    return data


async def _report_status(broker: Broker, pid: str, element: Any) -> web.Response:
    """ReportStatus: the partner's word on an application we sent it, as the REST callback."""
    values = _fields(element, ("idempotencyKey", "update"))
    update = {**_json_text(values["update"], "update"), "idempotency_key": values["idempotencyKey"]}
    exchange = await exchange_for(broker.journal, pid, update)
    lifecycle = lifecycle_of(broker.catalogue, exchange, update)
    state, _ = await record_lifecycle(
        broker.journal, broker.catalogue, exchange, lifecycle, update, via="soap"
    )
    answer = (
        "<tb:ReportStatusResponse>"
        f"<tb:exchangeId>{escape(exchange.id)}</tb:exchangeId>"
        f"<tb:lifecycle>{escape(state)}</tb:lifecycle>"
        "</tb:ReportStatusResponse>"
    )
    return web.Response(body=_ENVELOPE.render([], answer), content_type="text/xml", charset="utf-8")


async def _application_status(broker: Broker, pid: str, element: Any) -> web.Response:
    """GetApplicationStatus: what became of an application the partner filed (the REST GET)."""
    key = _fields(element, ("idempotencyKey",))["idempotencyKey"]
    full = await filed_by(broker.journal, pid, key)
    steps = "".join(
        "<tb:step>"
        f"<tb:lifecycle>{escape(str(step['state']))}</tb:lifecycle>"
        f"<tb:at>{escape(str(step['at']))}</tb:at>"
        + (f"<tb:note>{escape(str(step['note']))}</tb:note>" if step.get("note") else "")
        + "</tb:step>"
        for step in full.lifecycle()
    )
    answer = (
        "<tb:GetApplicationStatusResponse>"
        f"<tb:exchangeId>{escape(full.id)}</tb:exchangeId>"
        f"<tb:state>{escape(full.state.value)}</tb:state>{steps}"
        "</tb:GetApplicationStatusResponse>"
    )
    return web.Response(body=_ENVELOPE.render([], answer), content_type="text/xml", charset="utf-8")


def _parse(element: Any) -> tuple[str, str, dict[str, Any]]:
    """service, idempotency key and application of a FileApplication element."""
    values = _fields(element, FIELDS)
    application = _json_text(values["application"], "application")
    return values["service"], values["idempotencyKey"], application


def fault(exc: RequestRefused) -> web.Response:
    """A SOAP 1.1 Fault for a refusal: Client for the caller's mistakes, Server for ours."""
    status = status_of(exc)
    errors = exc.extra.get("errors") or []
    reason = exc.detail
    if errors:
        reason += ": " + "; ".join(f"{e.get('path')}: {e.get('message')}" for e in errors)
    code = "Server" if status >= 500 else "Client"
    if exc.code == "version-mismatch":
        code = "VersionMismatch"
    items = "".join(
        f'<tb:error path="{escape_attr(str(e.get("path")))}">{escape(str(e.get("message")))}'
        "</tb:error>"
        for e in errors
    )
    problem = f'<tb:problem type="{PROBLEM_TYPE}{exc.code}" status="{status}">{items}</tb:problem>'
    text = (
        f"<soap-env:Fault><faultcode>soap-env:{code}</faultcode>"
        f"<faultstring>{escape(reason)}</faultstring><detail>{problem}</detail></soap-env:Fault>"
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status == 503:
        headers["Retry-After"] = "5"
    return web.Response(
        status=500,
        body=_ENVELOPE.render([], text),
        content_type="text/xml",
        charset="utf-8",
        headers=headers,
    )
