"""A stub X-Road security server with its provider behind it, for message protocol 4.0 (SOAP 1.1).

The checks follow the security server's SOAP parser (nordic-institute/X-Road,
src/common/common-util/src/main/java/ee/ria/xroad/common/message/SaxSoapParserImpl.java) and its
fault codes (…/ee/ria/xroad/common/ErrorCodes.java): errors in the client's message are
``Client.<Code>``, failures of the provider ``Server.ServerProxy.<Code>``. A valid request gets
every header back in the same order, plus ``xrd:requestHash`` (PR-MESS 2.2).

The provider is Guangdong market regulation's ``verifyCertificate``: it checks a Unified Social
Credit Code (GB 32100-2015 check character) and records the verification. Its idempotency key is
the body element ``requestKey``: the same key for every retry of one request, while ``xrd:id``
must be new for every message (the stub refuses a reused ``xrd:id``). Answers:

* ``result`` VALID or INVALID, with ``verificationNo`` (a repeated key answers the same number);
* a body ``fault`` (HTTP 200, PR-MESS Annex D.2) for a malformed code, a missing key, or a key
  reused for another code: permanent business refusals that are not SOAP faults;
* SOAP fault ``Server.ServerProxy.ServiceFailed.NetworkError`` for the first N messages of a
  key when ``unavailable_first=N``: transient.

Use::

    stub = XRoadStub(unavailable_first=1)
    url = stub.start()        # http://127.0.0.1:<port>/ : POST text/xml SOAP 1.1 here
    stub.read_log()           # [{"messageId": …, "client": "SUBSYSTEM:…", "outcome": …}, …]
    stub.stop()

``WSDL_PATH`` is the published service description (importing xroad.xsd from the network, as
published ones do); ``CATALOGUE`` maps those network locations to the local copies.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lxml import etree

from tests.foreign.loopback import Loopback

HERE = Path(__file__).resolve().parent / "xroad"
WSDL_PATH = HERE / "verifyCertificate.wsdl"
CATALOGUE = {
    "http://x-road.eu/xsd/xroad.xsd": HERE / "xroad.xsd",
    "http://x-road.eu/xsd/identifiers.xsd": HERE / "identifiers.xsd",
    "http://www.w3.org/2009/01/xml.xsd": HERE / "xml.xsd",
}
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
XRD = "http://x-road.eu/xsd/xroad.xsd"
ID = "http://x-road.eu/xsd/identifiers"
TNS = "http://producer.amr.gd.xroad.example"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
OBJECT_TYPES = {"MEMBER", "SUBSYSTEM", "SERVER", "GLOBALGROUP", "LOCALGROUP"}
OBJECT_TYPES |= {"SECURITYCATEGORY", "SERVICE", "CENTRALSERVICE"}
CLIENT_PARTS = ("xRoadInstance", "memberClass", "memberCode", "subsystemCode")
SERVICE_PARTS = (*CLIENT_PARTS, "serviceCode", "serviceVersion")
REQUIRED_PARTS = CLIENT_PARTS[:3]
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
# Fault strings as the security server's parser words them.
DUPLICATE = "SOAP header contains duplicate field '{}'"
INVALID_BODY = "Malformed SOAP message: body must have exactly one child element"
INCONSISTENT = "Malformed SOAP message: service code does not match in header and body"
BAD_VERSION = "Invalid protocol version (supported: 4.x, provided: {})"
MISSING_FIELD = "Required field '{}' is missing"


class XRoadFault(Exception):
    """A SOAP fault as the security server writes it: faultcode and faultstring."""

    def __init__(self, code: str, string: str) -> None:
        super().__init__(f"{code}: {string}")
        self.code, self.string = code, string


def client_fault(code: str, string: str) -> XRoadFault:
    """A fault caused by the client's message (prefix ``Client``)."""
    return XRoadFault(f"Client.{code}", string)


@dataclass(frozen=True)
class XRoadId:
    """An X-Road identifier: object type and its codes (absent codes are None)."""

    object_type: str
    parts: tuple[tuple[str, str | None], ...]

    def get(self, name: str) -> str | None:
        return dict(self.parts).get(name)

    def __str__(self) -> str:
        codes = [value for _, value in self.parts if value is not None]
        return f"{self.object_type}:{'/'.join(codes)}"


def read_identifier(element: Any, allowed: set[str], names: tuple[str, ...]) -> XRoadId:
    """Read xrd:client or xrd:service; refuse a wrong objectType or a repeated part."""
    object_type = element.get(f"{{{ID}}}objectType")
    if object_type is None:
        raise client_fault("InvalidXml", "Missing objectType attribute")
    if object_type not in OBJECT_TYPES:
        raise client_fault("InvalidXml", f"Unknown objectType: {object_type}")
    if object_type not in allowed:
        raise client_fault("InvalidXml", f"Unexpected objectType: {object_type}")
    values: dict[str, str] = {}
    for child in element:
        qname = etree.QName(child)
        if qname.namespace == ID and qname.localname in names:
            if qname.localname in values:
                raise client_fault("DuplicateHeaderField", DUPLICATE.format(qname))
            values[qname.localname] = (child.text or "").strip()
    return XRoadId(object_type, tuple((name, values.get(name)) for name in names))


@dataclass
class Message:
    """The X-Road header fields of one request, its body element and its bytes."""

    raw: bytes
    header: Any
    body: Any
    fields: dict[str, Any] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value if isinstance(value, str) else None


def read_message(raw: bytes) -> Message:
    """Parse and check a request the way the security server's parser does."""
    try:
        root = etree.fromstring(raw, PARSER)
    except etree.XMLSyntaxError as exc:
        raise client_fault("InvalidXml", str(exc)) from exc
    if root.tag != f"{{{SOAP}}}Envelope":
        raise client_fault("InvalidSoap", "Malformed SOAP message: envelope missing")
    header, body = root.find(f"{{{SOAP}}}Header"), root.find(f"{{{SOAP}}}Body")
    message = Message(raw=raw, header=header, body=None)
    if header is not None:
        read_header_fields(header, message.fields)
    check_required(message)
    if body is None:
        raise client_fault("MissingBody", "Malformed SOAP message: body missing")
    if len(body) != 1:
        raise client_fault("InvalidBody", INVALID_BODY)
    message.body = body[0]
    service_code = message.fields["service"].get("serviceCode") or ""
    if not etree.QName(message.body).localname.startswith(service_code):
        raise client_fault("InconsistentHeaders", INCONSISTENT)
    return message


def read_header_fields(header: Any, fields: dict[str, Any]) -> None:
    """Collect the xrd: header fields; refuse duplicates and a protocol version other than 4.x."""
    for child in header:
        qname = etree.QName(child)
        if qname.namespace != XRD:
            continue
        if qname.localname in fields:
            raise client_fault("DuplicateHeaderField", DUPLICATE.format(qname))
        if qname.localname == "client":
            fields["client"] = read_identifier(child, {"MEMBER", "SUBSYSTEM"}, CLIENT_PARTS)
        elif qname.localname == "service":
            fields["service"] = read_identifier(child, {"SERVICE"}, SERVICE_PARTS)
        else:
            fields[qname.localname] = (child.text or "").strip()
    version = fields.get("protocolVersion")
    if version is not None and not version.startswith("4."):
        raise client_fault("InvalidProtocolVersion", BAD_VERSION.format(version))


def check_required(message: Message) -> None:
    """Mandatory fields in the parser's order, then the parts of each identifier (stub's rule)."""
    if message.header is None:
        raise client_fault("MissingHeader", "Malformed SOAP message: header missing")
    for name in ("protocolVersion", "client", "id"):
        if not message.fields.get(name):
            raise client_fault("MissingHeaderField", MISSING_FIELD.format(name))
    if "service" not in message.fields:
        raise client_fault("MissingHeaderField", "Message header must contain service id")
    for name, needed in (("client", REQUIRED_PARTS), ("service", (*REQUIRED_PARTS, "serviceCode"))):
        for part in needed:
            if not message.fields[name].get(part):
                raise client_fault("MissingHeaderField", MISSING_FIELD.format(f"{name}/{part}"))


def same_service(asked: XRoadId, offered: XRoadId) -> bool:
    """The offered service, with its version, or with no version asked."""
    version = asked.get("serviceVersion")
    return all(
        asked.get(part) == offered.get(part) or (part == "serviceVersion" and version is None)
        for part in SERVICE_PARTS
    )


def uscc_check_char(code17: str) -> str:
    """GB 32100-2015: check = (31 − Σ value·weight mod 31) mod 31 over the first 17 characters."""
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(code17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


@dataclass
class Provider:
    """The provider's books: verifications by requestKey, unavailability counters, the log."""

    service: XRoadId
    unavailable_first: int
    verifications: dict[str, dict[str, str]] = field(default_factory=dict)
    unavailable_seen: dict[str, int] = field(default_factory=dict)
    message_ids: set[str] = field(default_factory=set)
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, message: Message, entry: dict[str, Any]) -> dict[str, str]:
        """The body fields of the answer to a checked message (or raise an XRoadFault)."""
        message_id = message.text("id") or ""
        if message_id in self.message_ids:
            raise client_fault("InvalidRequest", f"Duplicate message id '{message_id}'")
        self.message_ids.add(message_id)
        if not same_service(message.fields["service"], self.service):
            raise XRoadFault(
                "Server.ServerProxy.UnknownService", f"Unknown service: {message.fields['service']}"
            )
        values = {etree.QName(c).localname: (c.text or "").strip() for c in message.body}
        key, uscc = values.get("requestKey", ""), values.get("uscc", "").upper()
        entry["requestKey"] = key or None
        if not key:
            return {"uscc": uscc, "result": "", "faultCode": "missing_request_key"}
        if key in self.verifications:
            return self.repeat(key, uscc, entry)
        seen = self.unavailable_seen.get(key, 0)
        if seen < self.unavailable_first:
            self.unavailable_seen[key] = seen + 1
            raise XRoadFault(
                "Server.ServerProxy.ServiceFailed.NetworkError",
                "Connection refused: provider information system unavailable",
            )
        if not re.fullmatch(f"[{USCC_CHARS}]{{18}}", uscc):
            return {"uscc": uscc, "result": "", "faultCode": "invalid_uscc_format"}
        result = "VALID" if uscc_check_char(uscc[:17]) == uscc[17] else "INVALID"
        number = f"GDV{len(self.verifications) + 1:08d}"
        self.verifications[key] = {"uscc": uscc, "result": result, "verificationNo": number}
        entry["record"] = "new"
        return dict(self.verifications[key])

    def repeat(self, key: str, uscc: str, entry: dict[str, Any]) -> dict[str, str]:
        """The first answer again for a repeated key, or a fault if the key now names another code."""
        known = self.verifications[key]
        if known["uscc"] != uscc:
            return {"uscc": uscc, "result": "", "faultCode": "request_key_reused"}
        entry["record"] = "repeat"
        return dict(known)


FAULT_TEXT = {
    "missing_request_key": "requestKey is required",
    "invalid_uscc_format": "uscc must be 18 characters of 0-9A-HJ-NPQRTUWXY",
    "request_key_reused": "requestKey was already used for another uscc",
}


def response_xml(message: Message, answer: dict[str, str]) -> bytes:
    """Echo the request headers in order, add requestHash, and wrap the provider's answer."""
    envelope = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"SOAP-ENV": SOAP, "xrd": XRD, "id": ID})
    header = etree.SubElement(envelope, f"{{{SOAP}}}Header")
    header.extend(copy.deepcopy(child) for child in message.header)
    digest = base64.b64encode(hashlib.sha512(message.raw).digest()).decode()
    etree.SubElement(header, f"{{{XRD}}}requestHash", algorithmId=SHA512).text = digest
    body = etree.SubElement(envelope, f"{{{SOAP}}}Body")
    wrapper = etree.SubElement(body, f"{{{TNS}}}verifyCertificateResponse", nsmap={"ns1": TNS})
    for name in ("uscc", "result", "verificationNo"):
        if name in answer:
            etree.SubElement(wrapper, f"{{{TNS}}}{name}").text = answer[name]
    if "faultCode" in answer:
        fault = etree.SubElement(wrapper, f"{{{TNS}}}fault")
        etree.SubElement(fault, f"{{{TNS}}}faultCode").text = answer["faultCode"]
        etree.SubElement(fault, f"{{{TNS}}}faultString").text = FAULT_TEXT[answer["faultCode"]]
    etree.cleanup_namespaces(envelope, top_nsmap={"xrd": XRD, "id": ID})
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def fault_xml(fault: XRoadFault) -> bytes:
    """A technical fault, shaped like PR-MESS Annex D.1 (faultDetail carries a fresh UUID)."""
    envelope = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"SOAP-ENV": SOAP})
    element = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP}}}Body"), f"{{{SOAP}}}Fault")
    etree.SubElement(element, "faultcode").text = fault.code
    etree.SubElement(element, "faultstring").text = fault.string
    etree.SubElement(element, "faultactor").text = ""
    detail = etree.SubElement(element, "detail")
    etree.SubElement(detail, "faultDetail").text = str(uuid.uuid4())
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        """One message: check it, let the provider answer, log what was decided."""
        stub = self.server.stub
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, payload = stub.handle(raw, self.headers.get("Content-Type", ""))
        self.send_response(status)
        self.send_header("Content-Type", "text/xml; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: XRoadStub


DEFAULT_SERVICE = XRoadId(
    "SERVICE",
    (
        ("xRoadInstance", "CN-GD"),
        ("memberClass", "GOV"),
        ("memberCode", "11440000MB2C92227Y"),
        ("subsystemCode", "certificate-verification"),
        ("serviceCode", "verifyCertificate"),
        ("serviceVersion", "v1"),
    ),
)


class XRoadStub:
    """The security server stub on 127.0.0.1 with a free port, served in a thread."""

    def __init__(
        self,
        *,
        unavailable_first: int = 0,
        service: XRoadId = DEFAULT_SERVICE,
        fault_status: int = 500,
    ) -> None:
        self.provider = Provider(service=service, unavailable_first=unavailable_first)
        self.fault_status = fault_status
        self.url = ""
        self._loop = Loopback()

    def handle(self, raw: bytes, content_type: str) -> tuple[int, bytes]:
        """Decide one message and log it; return the HTTP status and the SOAP envelope."""
        entry: dict[str, Any] = {"messageId": None, "client": None, "service": None, "record": None}
        with self.provider.lock:
            try:
                if content_type.split(";")[0].strip().lower() != "text/xml":
                    raise client_fault(
                        "InvalidContentType", f"Invalid content type: {content_type}"
                    )
                message = read_message(raw)
                entry.update(
                    messageId=message.text("id"),
                    client=str(message.fields["client"]),
                    service=str(message.fields["service"]),
                    userId=message.text("userId"),
                    issue=message.text("issue"),
                )
                answer = self.provider.answer(message, entry)
            except XRoadFault as fault:
                entry.update(outcome="soap_fault", faultCode=fault.code)
                self.provider.log.append(entry)
                return self.fault_status, fault_xml(fault)
            fault_code = answer.get("faultCode")
            outcome = "body_fault" if fault_code else answer["result"]
            entry.update(
                outcome=outcome, faultCode=fault_code, verificationNo=answer.get("verificationNo")
            )
            self.provider.log.append(entry)
            return 200, response_xml(message, answer)

    def start(self) -> str:
        """Serve on a free loopback port; return the URL to POST messages to."""
        server = _Server(("127.0.0.1", 0), _Handler)
        server.stub = self
        self.url = f"http://127.0.0.1:{self._loop.serve(server)}/"
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._loop.stop()

    def read_log(self) -> list[dict[str, Any]]:
        """Every message in order: messageId, client, service, outcome, faultCode, record, …"""
        with self.provider.lock:
            return [dict(entry) for entry in self.provider.log]

    def __enter__(self) -> XRoadStub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
