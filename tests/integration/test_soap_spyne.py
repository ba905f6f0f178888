"""Interop with a SOAP server we did not write: spyne, validating with lxml, on loopback.

The service mirrors the Hong Kong renewal (HKID as number and check digit, enumerations, xs:date,
xs:decimal). Its WSDL is fetched once by the test and saved to a file, as an operator would: the
broker never fetches WSDLs. spyne validates every request against its own schema; the broker
checks the same facets first (lxml against the WSDL's XML Schema), so a violation never reaches
spyne, and the broker reads spyne's replies and faults.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from adapters.base import OutboundRequest
from adapters.registry import protocols
from adapters.soap import SoapAdapter
from federation.config import load_config
from federation.domain.errors import PermanentError, TransientError, UnknownOutcomeError

# spyne 2.14 imports the deprecated cgi module, and six's importer trips ImportWarning: spyne is
# imported inside the fixture so that these filters (and only these) apply to it.
pytestmark = [
    pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning"),
]

NS = "urn:hk:gov:td:spyne-interop:2025"
HEADER = "{urn:tongban:header}IdempotencyKey"
PARTNERS_YAML = """\
version: 1
defaults:
  timeouts: {{connect: 1s, read: 5s, total: 10s}}
partners:
  - id: hk
    name: {{zh: 香港特別行政區政府運輸署, en: Transport Department (spyne)}}
    region: {{code: "81", iso: CN-HK}}
    protocol: soap
    endpoint: {url}
    soap:
      wsdl: spyne.wsdl
      idempotency_header: "{header}"
    services:
      TD-VL-RENEW:
        mapping: mapping.yaml
        operation: RenewVehicleLicence
        status_operation: GetRenewalStatus
        poll_every: 1h
        supplement_operation: SubmitSupplementaryDocuments
"""
PAYLOAD: dict[str, Any] = {
    "vehicle_class": "private_car",
    "period_months": 12,
    "current_expiry_date": "2025-05-14",
    "amount": "5794.00",
    "owner": {"name_en": "LEE, Wing Sun", "hkid": {"number": "K802133", "check_digit": "3"}},
}


def hkid_check(number: str) -> str:
    """The HKID check character (domain.md): letters A=10…, a space worth 36 pads one letter."""
    letters, digits = number[:-6], number[-6:]
    values = [36] * (2 - len(letters)) + [ord(c) - 55 for c in letters] + [int(d) for d in digits]
    r = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True)) % 11
    return "0" if r == 0 else "A" if r == 1 else str(11 - r)


def build_app(seen: list[str | None]) -> Any:
    """A spyne WSGI application for the renewal, validating input with lxml."""
    from spyne import (
        Application,
        ComplexModel,
        Date,
        DateTime,
        Decimal,
        Fault,
        Integer,
        ServiceBase,
        Unicode,
        rpc,
    )
    from spyne.protocol.soap import Soap11
    from spyne.server.wsgi import WsgiApplication

    def required(cls: Any, **kw: Any) -> Any:
        return cls(min_occurs=1, nillable=False, **kw)

    class Hkid(ComplexModel):
        __namespace__ = NS
        number = required(Unicode, pattern=r"[A-Z]{1,2}[0-9]{6}")
        check_digit = required(Unicode, pattern=r"[0-9A]")

    class Owner(ComplexModel):
        __namespace__ = NS
        name_en = required(Unicode, max_len=40)
        hkid = Hkid.customize(min_occurs=1, nillable=False)

    class Renewal(ComplexModel):
        __namespace__ = NS
        vehicle_class = required(Unicode, values=["private_car", "motor_cycle", "taxi"])
        period_months = required(Integer, values=[4, 12])
        current_expiry_date = required(Date)
        amount = required(Decimal, fraction_digits=2)
        owner = Owner.customize(min_occurs=1, nillable=False)

    class Receipt(ComplexModel):
        __namespace__ = NS
        ref_no = Unicode
        status = Unicode
        received_at = DateTime
        fee_payable = Decimal

    class StatusQuery(ComplexModel):
        __namespace__ = NS
        ref_no = required(Unicode, pattern=r"TD-[0-9]{6}")

    class StatusReport(ComplexModel):
        __namespace__ = NS
        ref_no = Unicode
        status = Unicode
        updated_at = DateTime
        remarks = Unicode(max_occurs="unbounded")

    class Document(ComplexModel):
        __namespace__ = NS
        document_type = required(Unicode, values=["INS_COVER", "HKIC"])
        file_ref = required(Unicode)

    class Supplementary(ComplexModel):
        __namespace__ = NS
        ref_no = required(Unicode, pattern=r"TD-[0-9]{6}")
        remarks = Unicode(min_occurs=0)
        supporting_document = Document.customize(min_occurs=1, max_occurs="unbounded")

    class Ack(ComplexModel):
        __namespace__ = NS
        ref_no = Unicode
        documents = Integer

    class RenewalService(ServiceBase):
        @rpc(StatusQuery, _returns=StatusReport, _body_style="bare")
        def GetRenewalStatus(ctx: Any, query: Any) -> Any:
            headers = ctx.in_header_doc or []
            seen.append(next((h.text for h in headers if h.tag == HEADER), None))
            return StatusReport(
                ref_no=query.ref_no,
                status="DOCUMENTS_REQUIRED",
                updated_at=dt.datetime(2025, 4, 29, 9, 30, tzinfo=dt.UTC),
                remarks=["Cover note required (INS_COVER)", "Bring the original HKID"],
            )

        @rpc(Supplementary, _returns=Ack, _body_style="bare")
        def SubmitSupplementaryDocuments(ctx: Any, material: Any) -> Any:
            headers = ctx.in_header_doc or []
            seen.append(next((h.text for h in headers if h.tag == HEADER), None))
            return Ack(ref_no=material.ref_no, documents=len(material.supporting_document))

        @rpc(Renewal, _returns=Receipt, _body_style="bare")
        def RenewVehicleLicence(ctx: Any, renewal: Any) -> Any:
            headers = ctx.in_header_doc or []
            seen.append(next((h.text for h in headers if h.tag == HEADER), None))
            hkid = renewal.owner.hkid
            if hkid_check(hkid.number) != hkid.check_digit:
                raise Fault(faultcode="Client.InvalidHkid", faultstring="HKID check digit is wrong")
            if renewal.vehicle_class == "taxi":
                raise Fault(faultcode="Server", faultstring="licensing system unavailable")
            return Receipt(
                ref_no=f"TD-{len(seen):06d}",
                status="RECEIVED",
                received_at=dt.datetime(2025, 4, 28, 10, 15, tzinfo=dt.UTC),
                fee_payable=decimal.Decimal(renewal.amount),
            )

    app = Application(
        [RenewalService],
        tns=NS,
        in_protocol=Soap11(validator="lxml"),
        out_protocol=Soap11(),
    )
    return WsgiApplication(app)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def spyne_server() -> Iterator[tuple[str, list[str | None]]]:
    """spyne served by wsgiref in a thread on loopback; yields its URL and the keys it saw."""
    seen: list[str | None] = []
    server: WSGIServer = make_server("127.0.0.1", 0, build_app(seen), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
async def adapter(spyne_server, tmp_path: Path):
    """The broker's SoapAdapter built from spyne's WSDL, saved to a file first."""
    url, _ = spyne_server
    wsdl = await asyncio.to_thread(lambda: urllib.request.urlopen(url + "?wsdl", timeout=5).read())
    (tmp_path / "spyne.wsdl").write_bytes(wsdl)
    (tmp_path / "mapping.yaml").write_text("mapping: 1\n", encoding="utf-8")
    yaml = PARTNERS_YAML.format(url=url, header=HEADER)
    (tmp_path / "partners.yaml").write_text(yaml, encoding="utf-8")
    soap = SoapAdapter(load_config(tmp_path, protocols()).partners["hk"])
    await soap.start()
    yield soap
    await soap.close()


def attempt(
    payload: dict[str, Any] | None = None, key: str = "spyne-1", kind: str = "application"
) -> OutboundRequest:
    return OutboundRequest(
        exchange_id=f"x-{key}",
        idempotency_key=key,
        service="TD-VL-RENEW",
        payload=PAYLOAD if payload is None else payload,
        attempt=1,
        kind=kind,
    )


def test_the_hkid_check_agrees_with_the_domain_examples() -> None:
    """The test's HKID check reproduces domain.md's valid numbers (so spyne's verdicts are right)."""
    cases = {"A123456": "3", "G123456": "A", "AB987654": "3", "K802133": "3", "E364912": "5"}
    assert {n: hkid_check(n) for n in cases} == cases


async def test_spyne_accepts_the_request_and_its_reply_is_parsed(adapter, spyne_server) -> None:
    """Delivered to spyne, which validated it; spyne's reply becomes a JSON-ready receipt."""
    reply = await adapter.send(attempt())
    assert reply.problem is None
    assert reply.body == {
        "ref_no": "TD-000001",
        "status": "RECEIVED",
        "received_at": reply.body["received_at"],
        "fee_payable": "5794.00",
    }
    assert reply.body["received_at"].startswith("2025-04-28T10:15:00")
    assert spyne_server[1] == ["spyne-1"]  # the idempotency header reached spyne


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"period_months": 6}, "period_months: Element"),
        ({"owner": {"name_en": "X", "hkid": {"number": "K80213", "check_digit": "3"}}}, "pattern"),
        ({"amount": "5794.001"}, "fractionDigits"),
    ],
)
async def test_the_broker_refuses_facets_before_spyne_sees_them(
    adapter, spyne_server, change: dict[str, Any], words: str
) -> None:
    """Enumeration, pattern and digits of spyne's WSDL are checked by the broker before sending
    (lxml against the WSDL's XML Schema): permanent, no round trip, the value not repeated."""
    with pytest.raises(PermanentError) as info:
        await adapter.send(attempt({**PAYLOAD, **change}))
    assert "[facet '" in info.value.message and words in info.value.message
    assert "5794.001" not in info.value.message and "K80213" not in info.value.message
    assert info.value.transcript.response is None
    assert spyne_server[1] == []  # nothing reached spyne


async def test_the_broker_refuses_type_errors_before_spyne_sees_them(adapter, spyne_server) -> None:
    """A non-integer period is the broker's own catch: nothing reaches spyne."""
    with pytest.raises(PermanentError) as info:
        await adapter.send(attempt({**PAYLOAD, "period_months": "twelve"}))
    assert "period_months: expected xs:integer" in info.value.message
    assert info.value.transcript.response is None


async def test_spyne_client_fault_is_permanent(adapter) -> None:
    """A wrong HKID check digit: spyne's Client.InvalidHkid fault, code and string kept."""
    bad = {**PAYLOAD, "owner": {"name_en": "X", "hkid": {"number": "K802133", "check_digit": "4"}}}
    with pytest.raises(PermanentError) as info:
        await adapter.send(attempt(bad))
    fault = info.value.transcript.response["fault"]
    assert fault["code"].endswith("Client.InvalidHkid")
    assert fault["reason"] == "HKID check digit is wrong"
    assert info.value.status == 500


async def test_spyne_server_fault_is_transient(adapter) -> None:
    """spyne's Server fault is worth retrying: TransientError, not an unknown outcome."""
    with pytest.raises(TransientError) as info:
        await adapter.send(attempt({**PAYLOAD, "vehicle_class": "taxi"}))
    assert not isinstance(info.value, UnknownOutcomeError)
    # the partner's own words kept apart from tongban's account, masked for readers who may not
    # reveal them
    assert "licensing system unavailable" in (info.value.partner_message or "")
    assert "licensing system unavailable" not in info.value.message


async def test_spyne_answers_a_status_query_and_takes_a_supplement(adapter, spyne_server) -> None:
    """The status and supplement operations named in partners.yaml, each with its own header key;
    repeated reply elements (remarks) come back as a list the status: section can join."""
    report = await adapter.send(attempt({"ref_no": "TD-000001"}, key="status-1", kind="status"))
    supplement = {
        "ref_no": "TD-000001",
        "remarks": "Cover note attached",
        "supporting_document": [
            {"document_type": "INS_COVER", "file_ref": "tbfile://hk/cover-note.pdf"},
            {"document_type": "HKIC", "file_ref": "tbfile://hk/hkid.pdf"},
        ],
    }
    ack = await adapter.send(attempt(supplement, key="supplement-1", kind="supplement"))
    assert report.problem is None and ack.problem is None
    assert report.body["status"] == "DOCUMENTS_REQUIRED"
    assert report.body["remarks"] == ["Cover note required (INS_COVER)", "Bring the original HKID"]
    assert report.body["updated_at"].startswith("2025-04-29T09:30:00")
    assert ack.body == {"ref_no": "TD-000001", "documents": 2}
    assert report.transcript.request["operation"] == "GetRenewalStatus"
    assert ack.transcript.request["operation"] == "SubmitSupplementaryDocuments"
    assert spyne_server[1] == ["status-1", "supplement-1"]


async def test_a_bad_status_query_is_refused_before_spyne(adapter, spyne_server) -> None:
    """A reference spyne's pattern refuses is refused by the broker first: permanent, no round
    trip (the poller asks again later)."""
    with pytest.raises(PermanentError) as info:
        await adapter.send(attempt({"ref_no": "HK-1"}, key="status-2", kind="status"))
    assert "ref_no: Element" in info.value.message and "[facet 'pattern']" in info.value.message
    assert info.value.transcript.response is None
    assert spyne_server[1] == []
