"""SOAP partners on loopback: delivery, faults, timeouts, type checks, config errors, XML attacks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import shutil
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.base import OutboundRequest
from adapters.body import BodyInvalid
from adapters.envelope import open_envelope
from adapters.registry import protocols
from adapters.soap import SoapAdapter
from adapters.soapspec import operation_tree
from adapters.wsdl import json_safe
from adapters.xmlsafe import parse
from federation.api.net import start_site
from federation.config import Config, load_config
from federation.domain.errors import (
    ConfigError,
    PermanentError,
    TransientError,
    UnknownOutcomeError,
)
from federation.sim.soap import SoapPartnerSimulator
from tests.unit.test_xmlsafe import BILLION_LAUGHS, DTD_SYSTEM, QUADRATIC, Bounded, xxe_file

REPO = Path(__file__).resolve().parents[2]
HK_NS = "urn:hk:gov:td:vehicle-licensing:2025"
PARTNERS_YAML = """\
version: 1
defaults:
  timeouts: {{connect: 1s, read: {read}, total: {total}}}
partners:
  - id: hk
    name: {{zh: 香港特別行政區政府運輸署, en: Transport Department}}
    region: {{code: "81", iso: CN-HK}}
    protocol: soap
    endpoint: https://gateway.td.example.hk/gba-exchange/soap
    soap:
      wsdl: wsdl/hk-td-vehicle-licensing.wsdl
      idempotency_header: "{{urn:hk:gov:td:vehicle-licensing:2025}}RequestId"
{hk_extra}
    services:
      TD-VL-RENEW: {{mapping: mappings/hk.yaml, operation: {hk_operation}}}
  - id: mo
    name: {{zh: 澳門特別行政區身份證明局, en: Identification Services Bureau}}
    region: {{code: "82", iso: CN-MO}}
    protocol: soap
    endpoint: https://www.dsi.example.mo/intercambio/soap
    soap:
      wsdl: wsdl/mo-dsi-registo-criminal.wsdl
{mo_extra}
    services:
      DSI-CRC-REQ: {{mapping: mappings/mo.yaml, operation: PedirCertificadoRegistoCriminal}}
"""
HK_PAYLOAD: dict[str, Any] = {
    "application_type": "VLR",
    "submission_channel": "GBA_SELF_SERVICE_KIOSK",
    "external_reference": "HKKIOSK-GZ01-20250428-0153",
    "application_date": "2025-04-28",
    "owner": {
        "name_en": "LEE, Wing Sun",
        "name_zh": "李永燊",
        "hkid": {"number": "K802133", "check_digit": "3"},
        "phone": "+85261937204",
        "email": "wingsun.lee@example.com",
    },
    "vehicle": {"registration_mark": "VK2318", "vehicle_class": "private_car"},
    "licence": {"period_months": 12, "current_expiry_date": "2025-05-14"},
    "insurance": {
        "insurer_name": "中國太平保險（香港）有限公司",
        "policy_number": "MTP2405118376",
        "expiry_date": "2026-05-13",
    },
    "payment": {"amount": "5794.00", "currency": "HKD"},
}
MO_PAYLOAD: dict[str, Any] = {
    "tipoPedido": "CRC",
    "canal": "TONGBAN-GBA",
    "referenciaExterna": "HQQATB-20250902-0037",
    "dataPedido": "2025-09-02",
    "requerente": {
        "nomeCompleto": "張嘉峯",
        "nomeRomanizado": "CHEONG, Ka Fong",
        "numeroBIR": "5215643(2)",
        "dataNascimento": "1996-08-21",
        "telemovel": "+85366281937",
        "morada": "广东省珠海市横琴粤澳深度合作区兴澳路澳门新街坊3座1201",
    },
    "certificado": {"finalidade": "向橫琴粵澳深度合作區企業應聘", "lingua": "zh-Hant"},
    "taxaPaga": "48.00",
}
SERVICE = {"hk": "TD-VL-RENEW", "mo": "DSI-CRC-REQ"}
PAYLOAD = {"hk": HK_PAYLOAD, "mo": MO_PAYLOAD}


def request(partner: str = "hk", key: str = "key-1", payload: Any = None, attempt: int = 1):
    """An attempt to deliver the demo payload (or ``payload``) to ``partner``."""
    return OutboundRequest(
        exchange_id=f"x-{key}",
        idempotency_key=key,
        service=SERVICE[partner],
        payload=PAYLOAD[partner] if payload is None else payload,
        attempt=attempt,
    )


@pytest.fixture
def soap_root(tmp_path: Path) -> Callable[..., Path]:
    """Write a two-partner SOAP catalogue (hk: SOAP 1.1, mo: SOAP 1.2) with the repo's WSDLs."""
    counter = iter(range(1000))

    def make(
        *,
        read: str = "2s",
        total: str = "5s",
        hk_extra: str = "",
        mo_extra: str = "",
        hk_operation: str = "RenewVehicleLicence",
        wsdl: dict[str, str] | None = None,
    ) -> Path:
        root = tmp_path / f"soap{next(counter)}"
        (root / "mappings").mkdir(parents=True)
        (root / "wsdl").mkdir()
        for name in ("hk-td-vehicle-licensing.wsdl", "mo-dsi-registo-criminal.wsdl"):
            shutil.copy(REPO / "partners" / "wsdl" / name, root / "wsdl" / name)
        for name, text in (wsdl or {}).items():
            (root / "wsdl" / name).write_text(text, encoding="utf-8")
        for m in ("hk", "mo"):
            (root / "mappings" / f"{m}.yaml").write_text("mapping: 1\n", encoding="utf-8")
        yaml = PARTNERS_YAML.format(
            read=read, total=total, hk_extra=hk_extra, mo_extra=mo_extra, hk_operation=hk_operation
        )
        (root / "partners.yaml").write_text(yaml, encoding="utf-8")
        return root

    return make


class Rig:
    """Simulators and started adapters for a catalogue; everything stopped on exit."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.sims: dict[str, SoapPartnerSimulator] = {}
        self.adapters: dict[str, SoapAdapter] = {}


@contextlib.asynccontextmanager
async def running(root: Path, *, endpoints: dict[str, str] | None = None) -> AsyncIterator[Rig]:
    """Start a simulator per partner (unless ``endpoints`` names one) and an adapter for each."""
    rig = Rig(load_config(root, protocols()))
    urls = dict(endpoints or {})
    try:
        for pid, partner in rig.config.partners.items():
            if pid not in urls:
                rig.sims[pid] = SoapPartnerSimulator(partner, seed=7)
                urls[pid] = await rig.sims[pid].start()
        rig.config = rig.config.with_endpoints(urls)
        for pid, partner in rig.config.partners.items():
            rig.adapters[pid] = SoapAdapter(partner)
            await rig.adapters[pid].start()
        yield rig
    finally:
        for adapter in rig.adapters.values():
            await adapter.close()
        for sim in rig.sims.values():
            await sim.stop()


# --- delivery -------------------------------------------------------------------------------------


async def test_delivers_and_returns_the_parsed_receipt(soap_root) -> None:
    """HK (SOAP 1.1): delivered; the receipt is a JSON-ready dict; the transcript says what went."""
    async with running(soap_root()) as rig:
        reply = await rig.adapters["hk"].send(request("hk"))
        seen = rig.sims["hk"].seen["key-1"]
    assert reply.status == 200 and reply.problem is None
    assert reply.body["ref_no"].startswith("HK") and reply.body["status"] == "RECEIVED"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", reply.body["target_completion_date"])
    orjson.dumps(reply.body)  # JSON-ready: no Decimal, date or lxml object inside
    assert seen.first_body["owner"]["hkid"] == {"number": "K802133", "check_digit": "3"}
    assert seen.first_body["owner"]["name_zh"] == "李永燊"
    sent = reply.transcript.request
    assert sent["headers"]["SOAPAction"] == f'"{HK_NS}/RenewVehicleLicence"'
    assert sent["headers"]["Content-Type"] == "text/xml; charset=utf-8"
    assert len(sent["body_sha256"]) == 64 and sent["body_bytes"] > 1000
    got = reply.transcript.response
    assert (
        got is not None and got["status"] == 200 and "VehicleLicenceRenewalResponse" in got["body"]
    )


async def test_macau_speaks_soap12_with_portuguese_elements(soap_root) -> None:
    """MO (SOAP 1.2): action in the Content-Type, 峯 carried intact, Portuguese receipt read."""
    async with running(soap_root()) as rig:
        reply = await rig.adapters["mo"].send(request("mo"))
        seen = rig.sims["mo"].seen["key-1"]
    ctype = reply.transcript.request["headers"]["Content-Type"]
    assert ctype.startswith("application/soap+xml; charset=utf-8; action=")
    assert "SOAPAction" not in reply.transcript.request["headers"]
    assert reply.body["numeroPedido"].startswith("MO") and reply.body["estado"] == "RECEBIDO"
    assert seen.first_body["requerente"]["nomeCompleto"] == "張嘉峯"
    assert seen.first_body["taxaPaga"] == "48.00"


async def test_the_idempotency_key_travels_on_every_attempt(soap_root) -> None:
    """Two 503s then success: the simulator saw the same header key on all three attempts."""
    async with running(soap_root()) as rig:
        rig.sims["hk"].behaviour.fail_ratio = 1.0
        for attempt in (1, 2):
            with pytest.raises(TransientError):
                await rig.adapters["hk"].send(request("hk", "retry-key", attempt=attempt))
        rig.sims["hk"].behaviour.fail_ratio = 0.0
        await rig.adapters["hk"].send(request("hk", "retry-key", attempt=3))
        assert rig.sims["hk"].keys == ["retry-key"] * 3
        assert rig.sims["hk"].seen["retry-key"].count == 1


async def test_a_repeated_key_gets_the_first_receipt(soap_root) -> None:
    """The partner deduplicates by the header key: a retry after success returns the same receipt."""
    async with running(soap_root()) as rig:
        first = await rig.adapters["mo"].send(request("mo", "same"))
        again = await rig.adapters["mo"].send(request("mo", "same", attempt=2))
        assert rig.sims["mo"].seen["same"].count == 2
    assert first.body == again.body


# --- faults and failures --------------------------------------------------------------------------


@pytest.mark.parametrize("partner", ["hk", "mo"])
async def test_client_faults_are_permanent(soap_root, partner: str) -> None:
    """A Client (1.1) / Sender (1.2) fault: PermanentError with the code and string recorded."""
    async with running(soap_root()) as rig:
        sim = rig.sims[partner]
        sim.behaviour.fail_ratio, sim.behaviour.fault = 1.0, "client"
        sim.behaviour.fault_string = "licence already renewed"
        with pytest.raises(PermanentError) as info:
            await rig.adapters[partner].send(request(partner))
    exc = info.value
    code = "Client" if partner == "hk" else "Sender"
    assert code in exc.message and "licence already renewed" not in exc.message
    assert exc.partner_message == "licence already renewed"  # the partner's words, kept apart
    assert exc.transcript.response is not None
    assert exc.transcript.response["fault"]["code"] == f"soap-env:{code}"
    assert exc.transcript.response["fault"]["reason"] == "licence already renewed"


@pytest.mark.parametrize("partner", ["hk", "mo"])
async def test_server_faults_are_transient(soap_root, partner: str) -> None:
    """A Server (1.1) / Receiver (1.2) fault is worth retrying: TransientError, not unknown."""
    async with running(soap_root()) as rig:
        sim = rig.sims[partner]
        sim.behaviour.fail_ratio, sim.behaviour.fault = 1.0, "server"
        with pytest.raises(TransientError) as info:
            await rig.adapters[partner].send(request(partner))
    assert not isinstance(info.value, UnknownOutcomeError)
    assert ("Server" if partner == "hk" else "Receiver") in info.value.message
    assert info.value.status == 500


async def test_http_503_and_429_are_transient_with_retry_after(soap_root) -> None:
    """503 and 429 without a fault: TransientError carrying the status and Retry-After."""
    async with running(soap_root()) as rig:
        b = rig.sims["hk"].behaviour
        b.fail_ratio, b.fail_status, b.retry_after = 1.0, 429, 30
        with pytest.raises(TransientError) as info:
            await rig.adapters["hk"].send(request("hk"))
        assert info.value.status == 429 and info.value.retry_after == 30
        b.fail_status, b.retry_after = 503, None
        with pytest.raises(TransientError) as info:
            await rig.adapters["hk"].send(request("hk"))
        assert info.value.status == 503


async def test_other_4xx_without_a_fault_is_permanent(soap_root) -> None:
    """A 403 with a plain-text body is a refusal: PermanentError with the partner's words."""
    async with running(soap_root()) as rig:
        b = rig.sims["hk"].behaviour
        b.fail_ratio, b.fail_status = 1.0, 403
        with pytest.raises(PermanentError) as info:
            await rig.adapters["hk"].send(request("hk"))
    assert info.value.status == 403 and info.value.message == "hk refused the request with HTTP 403"
    assert (
        info.value.partner_message is not None and "simulated failure" in info.value.partner_message
    )


async def test_timeout_after_sending_is_an_unknown_outcome(soap_root) -> None:
    """A partner slower than the read timeout processed the request: UnknownOutcomeError."""
    async with running(soap_root(read="200ms", total="1s")) as rig:
        rig.sims["hk"].behaviour.delay = 0.6
        with pytest.raises(UnknownOutcomeError) as info:
            await rig.adapters["hk"].send(request("hk", "slow"))
        await asyncio.sleep(0.5)
        assert "slow" in rig.sims["hk"].seen
    assert "did not answer in time" in info.value.message


async def test_refused_connection_is_transient_not_unknown(soap_root) -> None:
    """Nothing listening: TransientError (nothing was sent), never an unknown outcome."""
    with contextlib.closing(__import__("socket").socket()) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/soap"
    async with running(soap_root(), endpoints={"hk": url}) as rig:
        with pytest.raises(TransientError) as info:
            await rig.adapters["hk"].send(request("hk"))
    assert not isinstance(info.value, UnknownOutcomeError)
    assert "cannot connect" in info.value.message


BAD_PAYLOADS = [
    ({k: v for k, v in HK_PAYLOAD.items() if k != "owner"}, ["owner: required element missing"]),
    (
        {**HK_PAYLOAD, "licence": {"period_months": "twelve", "current_expiry_date": "2025-05-14"}},
        ["licence.period_months: expected xs:int, got 'twelve'"],
    ),
    (
        {**HK_PAYLOAD, "application_date": "2025-02-30"},
        ["application_date: expected xs:date, got '2025-02-30'"],
    ),
    (
        {**HK_PAYLOAD, "payment": {"amount": 5794.5, "currency": ["HKD"]}},
        ["payment.currency: one value expected, got a list"],
    ),
    ({**HK_PAYLOAD, "vehicle_colour": "red"}, ["vehicle_colour: no such element in the WSDL"]),
    ({**HK_PAYLOAD, "owner": "LEE, Wing Sun"}, ["owner: expected a mapping of elements"]),
    (
        {**HK_PAYLOAD, "owner": {**HK_PAYLOAD["owner"], "hkid": {"number": "K802133"}}},
        ["owner.hkid.check_digit: required element missing"],
    ),
    ({**HK_PAYLOAD, "submission_channel": True}, ["submission_channel: expected text"]),
]


@pytest.mark.parametrize(("payload", "expected"), BAD_PAYLOADS)
async def test_payload_type_errors_are_permanent_and_nothing_is_sent(
    soap_root, payload: dict[str, Any], expected: list[str]
) -> None:
    """Missing, mistyped or unknown elements: PermanentError naming each; the partner sees nothing."""
    async with running(soap_root()) as rig:
        with pytest.raises(PermanentError) as info:
            await rig.adapters["hk"].send(request("hk", payload=payload))
        assert rig.sims["hk"].requests == 0
    problems = info.value.transcript.request["problems"]
    for want in expected:
        assert any(p.startswith(want) for p in problems), problems
    assert "does not match the WSDL input of RenewVehicleLicence" in info.value.message


async def test_a_reply_off_the_wsdl_is_delivered_with_a_problem(soap_root) -> None:
    """A 200 envelope whose content breaks the WSDL output: delivered, receipt problem noted."""
    odd = (
        '<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
        f'<t:VehicleLicenceRenewalResponse xmlns:t="{HK_NS}"><t:status>RECEIVED</t:status>'
        "<t:colour>red</t:colour></t:VehicleLicenceRenewalResponse></e:Body></e:Envelope>"
    )
    async with (
        hostile({"odd": odd.encode()}) as url,
        running(soap_root(), endpoints={"hk": f"{url}/odd"}) as rig,
    ):
        reply = await rig.adapters["hk"].send(request("hk"))
    assert reply.body is None and reply.problem is not None
    assert "colour: unexpected element" in reply.problem
    assert "ref_no: required element missing" in reply.problem


_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
_ANSWER = (
    f'<t:VehicleLicenceRenewalResponse xmlns:t="{HK_NS}"><t:ref_no>HK-1</t:ref_no>'
    "<t:status>RECEIVED</t:status><t:received_at>2025-04-28T10:15:00+08:00</t:received_at>"
    "</t:VehicleLicenceRenewalResponse>"
)
NO_ANSWER = {
    "empty": (b"", "with an empty body"),
    "empty-body": (
        f'<e:Envelope xmlns:e="{_SOAP11}"><e:Body/></e:Envelope>'.encode(),
        "with an empty SOAP Body",
    ),
    "other-element": (
        f'<e:Envelope xmlns:e="{_SOAP11}"><e:Body><t:RenewalStatusResponse xmlns:t="{HK_NS}">'
        "<t:status>RECEIVED</t:status></t:RenewalStatusResponse></e:Body></e:Envelope>".encode(),
        "with RenewalStatusResponse in the SOAP Body",
    ),
    "soap12-on-soap11": (
        f'<e:Envelope xmlns:e="{_SOAP12}"><e:Body>{_ANSWER}</e:Body></e:Envelope>'.encode(),
        "with a SOAP 1.2 envelope on a SOAP 1.1 port",
    ),
}


@pytest.mark.parametrize("kind", sorted(NO_ANSWER))
async def test_a_200_without_the_operations_answer_is_an_unknown_outcome(
    soap_root, kind: str
) -> None:
    """HK has no reply rules: a 200 holding no RenewVehicleLicence answer is no yes; whether TD
    took the application is unknown (retried with the same key), and the attempt says why."""
    body, why = NO_ANSWER[kind]
    async with (
        hostile({kind: body}) as url,
        running(soap_root(), endpoints={"hk": f"{url}/{kind}"}) as rig,
    ):
        with pytest.raises(UnknownOutcomeError) as info:
            await rig.adapters["hk"].send(request("hk"))
    assert info.value.message == (
        f"hk answered HTTP 200 {why}, not the answer of RenewVehicleLicence; "
        "it may have processed the request"
    )
    assert info.value.transcript.response is not None


async def test_the_operations_answer_in_the_right_envelope_is_delivered(soap_root) -> None:
    """The counterpart of the above: the output element in a SOAP 1.1 envelope is the yes."""
    answer = f'<e:Envelope xmlns:e="{_SOAP11}"><e:Body>{_ANSWER}</e:Body></e:Envelope>'
    async with (
        hostile({"yes": answer.encode()}) as url,
        running(soap_root(), endpoints={"hk": f"{url}/yes"}) as rig,
    ):
        reply = await rig.adapters["hk"].send(request("hk"))
    assert reply.problem is None and reply.body["ref_no"] == "HK-1"


@pytest.mark.parametrize("kind", sorted(NO_ANSWER))
async def test_reply_rules_may_call_a_bare_200_a_yes(soap_root, kind: str) -> None:
    """A partner whose reply rules say any 200 is a yes: delivered, a missing receipt noted (the
    answer in the other version's envelope is read as it is)."""
    rules = "    reply: {success: {status: [200]}}"
    body, _ = NO_ANSWER[kind]
    async with (
        hostile({kind: body}) as url,
        running(soap_root(hk_extra=rules), endpoints={"hk": f"{url}/{kind}"}) as rig,
    ):
        reply = await rig.adapters["hk"].send(request("hk"))
    assert reply.status == 200
    if kind == "soap12-on-soap11":
        assert reply.problem is None and reply.body["ref_no"] == "HK-1"
    else:
        assert reply.body is None and reply.problem


# --- WS-Security ----------------------------------------------------------------------------------


async def test_ws_security_password_is_sent_but_never_recorded(soap_root, monkeypatch) -> None:
    """The UsernameToken goes on the wire; the transcript and its digest never reveal the password."""
    monkeypatch.setenv("TONGBAN_TEST_MO_PASSWORD", "pa55-w0rd-誰")
    captured: list[bytes] = []
    handler = mo_keeping(captured)

    extra = "      ws_security: {username: tongban-gba, password_env: TONGBAN_TEST_MO_PASSWORD}"
    async with (
        serve(handler) as url,
        running(soap_root(mo_extra=extra), endpoints={"mo": url}) as rig,
    ):
        reply = await rig.adapters["mo"].send(request("mo"))
        assert "pa55-w0rd" not in repr(rig.adapters["mo"].__dict__)
    wire = captured[0].decode()
    assert "<wsse:Username>tongban-gba</wsse:Username>" in wire and "pa55-w0rd-誰" in wire
    assert "pa55-w0rd" not in json.dumps(reply.transcript.request, ensure_ascii=False)
    assert reply.transcript.request["body_sha256"] != hashlib.sha256(captured[0]).hexdigest()


async def test_an_unreadable_password_holds_the_delivery_not_the_broker(
    soap_root, monkeypatch
) -> None:
    """ws_security's password cannot be read (its variable unset): the adapter starts (every other
    partner is served), each attempt is held with a transient error naming the reference and
    nothing is sent; once the variable is set, the next attempt goes out. Before, the broker
    refused to start."""
    monkeypatch.delenv("TONGBAN_TEST_MO_PASSWORD", raising=False)
    captured: list[bytes] = []
    handler = mo_keeping(captured)

    extra = "      ws_security: {username: tongban-gba, password_env: TONGBAN_TEST_MO_PASSWORD}"
    async with (
        serve(handler) as url,
        running(soap_root(mo_extra=extra), endpoints={"mo": url}) as rig,
    ):
        with pytest.raises(TransientError) as held:
            await rig.adapters["mo"].send(request("mo"))
        assert captured == []
        assert "not sent: secret {env:TONGBAN_TEST_MO_PASSWORD}" in str(held.value)
        monkeypatch.setenv("TONGBAN_TEST_MO_PASSWORD", "s3cret-now")
        await rig.adapters["mo"].send(request("mo"))
    assert len(captured) == 1 and b"s3cret-now" in captured[0]


async def test_a_password_file_is_read_at_every_attempt(soap_root, tmp_path) -> None:
    """ws_security's password: "{file:…}": a rotated file is used by the next attempt."""
    captured: list[bytes] = []
    handler = mo_keeping(captured)

    root = soap_root(mo_extra='      ws_security: {username: u, password: "{file:mo.password}"}')
    secret = root / "mo.password"
    secret.write_text("first-pass\n", encoding="utf-8")
    secret.chmod(0o600)
    async with serve(handler) as url, running(root, endpoints={"mo": url}) as rig:
        await rig.adapters["mo"].send(request("mo"))
        secret.write_text("second-pass\n", encoding="utf-8")
        reply = await rig.adapters["mo"].send(request("mo"))
    assert b"first-pass" in captured[0] and b"second-pass" in captured[1]
    assert "second-pass" not in json.dumps(reply.transcript.request)


def _echoing(reply: Callable[[str], bytes], status: int) -> Callable[[web.Request], Any]:
    """A SOAP 1.2 partner whose reply quotes the WS-Security password it received (escaped)."""

    async def handler(req: web.Request) -> web.Response:
        found = re.search(r"<wsse:Password [^>]*>([^<]*)</wsse:Password>", await req.text())
        assert found is not None
        quoted = found.group(1)  # as written on the wire: XML-escaped
        return web.Response(status=status, body=reply(quoted), content_type="application/soap+xml")

    return handler


def _echo_fault(quoted: str) -> bytes:
    return (
        '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><e:Fault>'
        "<e:Code><e:Value>e:Sender</e:Value></e:Code><e:Reason>"
        f'<e:Text xml:lang="en">password {quoted} is wrong</e:Text>'
        "</e:Reason></e:Fault></e:Body></e:Envelope>"
    ).encode()


def _echo_receipt(quoted: str) -> bytes:
    return _mo_reply().replace(b"DSI-2025-1", f"DSI-{quoted}".encode())


async def test_a_ws_security_password_the_partner_quotes_back_is_redacted(
    soap_root, monkeypatch
) -> None:
    """A fault quoting the password: the error's message, partner_message, partner code and
    transcript hold <redacted> where it was; so do a receipt's body and transcript that quote it.
    Before, the fault reason and the reply text kept it."""
    password = "pa55&w0rd<誰>"
    monkeypatch.setenv("TONGBAN_TEST_MO_PASSWORD", password)
    extra = "      ws_security: {username: tongban-gba, password_env: TONGBAN_TEST_MO_PASSWORD}"
    root = soap_root(mo_extra=extra)
    async with (
        serve(_echoing(_echo_fault, 500)) as url,
        running(root, endpoints={"mo": url}) as rig,
    ):
        with pytest.raises(PermanentError) as info:
            await rig.adapters["mo"].send(request("mo"))
    exc = info.value
    assert exc.partner_message == "password <redacted> is wrong"
    async with (
        serve(_echoing(_echo_receipt, 200)) as url,
        running(root, endpoints={"mo": url}) as rig,
    ):
        reply = await rig.adapters["mo"].send(request("mo"))
    assert reply.body["numeroPedido"] == "DSI-<redacted>"
    kept = [
        exc.message,
        exc.partner_message,
        str(exc.partner_code),
        json.dumps([exc.transcript.request, exc.transcript.response], ensure_ascii=False),
        json.dumps([reply.transcript.request, reply.transcript.response], ensure_ascii=False),
        json.dumps(reply.body, ensure_ascii=False, default=str),
    ]
    assert "password <redacted> is wrong" in kept[3]  # the reply text is kept, without it
    for text in kept:
        assert password not in text and "pa55&amp;w0rd&lt;誰&gt;" not in text, text


async def test_a_password_quoted_as_character_references_is_redacted(
    soap_root, monkeypatch
) -> None:
    """A fault that writes the password it received as XML character references (decimal for
    some characters, hexadecimal for others): the transcript keeps the fault's text with
    <redacted> in its place. Before, the references were kept, and the password with them."""
    password = "pa55&w0rd<誰>"
    monkeypatch.setenv("TONGBAN_TEST_MO_PASSWORD", password)
    written = "".join(
        f"&#{ord(c)};" if i % 2 else f"&#x{ord(c):x};" for i, c in enumerate(password)
    )
    extra = "      ws_security: {username: tongban-gba, password_env: TONGBAN_TEST_MO_PASSWORD}"
    async with (
        serve(_echoing(lambda _quoted: _echo_fault(written), 500)) as url,
        running(soap_root(mo_extra=extra), endpoints={"mo": url}) as rig,
    ):
        with pytest.raises(PermanentError) as info:
            await rig.adapters["mo"].send(request("mo"))
    kept = json.dumps(info.value.transcript.response, ensure_ascii=False)
    assert "password <redacted> is wrong" in kept
    assert written not in kept and "&#x70;&#97;" not in kept, kept


# --- configuration --------------------------------------------------------------------------------


def problems_of(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(root, protocols())
    # partners.yaml is shown relative to the working directory when it can be; not here.
    return [re.sub(r"^.*?partners\.yaml:", "partners.yaml:", str(p)) for p in info.value.problems]


def test_unknown_operation_is_named_with_file_line_and_the_choices(soap_root) -> None:
    """An operation the binding lacks is an error at its own line, listing the real ones."""
    found = problems_of(soap_root(hk_operation="RenewLicence"))
    assert found == [
        "partners.yaml:15: partners[0].services.TD-VL-RENEW.operation: no operation "
        "'RenewLicence' in port VehicleLicensingSoap11Port: RenewVehicleLicence, GetRenewalStatus, "
        "SubmitSupplementaryDocuments"
    ]


def test_soap_section_mistakes_are_reported_together(soap_root) -> None:
    """Bad header name, bad version, unknown port, missing WSDL: each at its file:line and key."""
    hk = '      version: "1.3"\n      port: NoSuchPort'
    mo = "      idempotency_header: IdempotencyKey"
    root = soap_root(hk_extra=hk, mo_extra=mo)
    assert problems_of(root) == [
        "partners.yaml:13: partners[0].soap.version: '1.3' is not one of: 1.1, 1.2",
        "partners.yaml:14: partners[0].soap.port: no SOAP port 'NoSuchPort' in service "
        "'VehicleLicensingService'; it has: VehicleLicensingSoap11Port",
        "partners.yaml:24: partners[1].soap.idempotency_header: 'IdempotencyKey' is not a "
        "namespaced element name such as {urn:tongban:header}IdempotencyKey",
    ]
    text = (root / "partners.yaml").read_text().replace("mo-dsi-registo", "missing")
    (root / "partners.yaml").write_text(text)
    assert "WSDL file 'wsdl/missing-criminal.wsdl' not found" in "\n".join(problems_of(root))


@pytest.mark.parametrize(
    ("security", "says"),
    [
        ("{username: u, password: pa55}", "secrets never go in configuration files"),
        (
            "{username: u, password: '{env:A}', password_env: A}",
            "give the password once: password: '{env:NAME}' or '{file:path}'",
        ),
        ("{username: u}", "give the password once"),
    ],
)
def test_a_ws_security_password_is_given_once_by_reference(
    soap_root, security: str, says: str
) -> None:
    found = "\n".join(problems_of(soap_root(mo_extra=f"      ws_security: {security}")))
    assert "partners[1].soap.ws_security" in found and says in found
    assert "pa55" not in found


def test_version_override_and_unset_password_are_warnings(soap_root, monkeypatch) -> None:
    """Overriding the binding's SOAP version, or an unset password variable, only warns."""
    monkeypatch.delenv("TONGBAN_NOT_SET", raising=False)
    mo = '      version: "1.1"\n      ws_security: {username: u, password_env: TONGBAN_NOT_SET}'
    config = load_config(soap_root(mo_extra=mo), protocols())
    assert config.partners["mo"].options["soap"].version == "1.1"


def test_operation_tree_lists_input_paths_and_required_ones(soap_root) -> None:
    """operation_tree gives the dotted input paths and the unconditionally required subset."""
    config = load_config(soap_root(), protocols())
    name, paths, required = operation_tree(config.partners["hk"], "TD-VL-RENEW")
    assert name == "RenewVehicleLicence"
    assert {"owner.hkid.number", "owner.hkid.check_digit", "payment.amount"} <= paths
    assert "owner.email" in paths and "owner.email" not in required
    assert {"owner", "owner.hkid.check_digit", "licence.period_months"} <= required
    _, mo_paths, mo_required = operation_tree(config.partners["mo"], "DSI-CRC-REQ")
    assert "requerente.numeroBIR" in mo_required and "taxaPaga" in mo_paths - mo_required


# --- the compiled fast path against zeep ----------------------------------------------------------


def _shape(el: Any) -> Any:
    return (el.tag, (el.text or "").strip(), [_shape(c) for c in el])


@pytest.mark.parametrize("partner", ["hk", "mo"])
async def test_compiled_writer_and_reader_agree_with_zeep(soap_root, partner: str) -> None:
    """The fast envelope equals zeep's serialisation; the fast reader equals zeep's parse."""
    from adapters.soap import wsdl_port

    async with running(soap_root()) as rig:
        adapter = rig.adapters[partner]
        op = adapter._operations[SERVICE[partner], "application"]
        port = wsdl_port(adapter.options)
        zop = port.binding.get(op.name)
        ours = parse(op.envelope.render([], op.input.write(PAYLOAD[partner])))
        theirs = zop.input.serialize(**PAYLOAD[partner]).content
        assert _shape(open_envelope(ours).first) == _shape(open_envelope(theirs).first)
        reply = await adapter.send(request(partner))
        raw = reply.transcript.response["body"].encode()
    opened = open_envelope(parse(raw))
    zeep_value = zop.output.body.parse(opened.first, port.document.types)
    from zeep.helpers import serialize_object

    assert reply.body == json_safe(serialize_object(zeep_value, dict))
    assert op.output.read_slowly(opened.first) == reply.body


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=TEXT, insurer=TEXT)
def test_any_text_is_escaped_like_zeep_or_refused_like_lxml(hk_op, name: str, insurer: str) -> None:
    """Random text (markup, CJK, control characters): fast == interpreted == zeep, or all refuse."""
    op, zop = hk_op
    payload = {
        **HK_PAYLOAD,
        "owner": {**HK_PAYLOAD["owner"], "name_en": name},
        "insurance": {**HK_PAYLOAD["insurance"], "insurer_name": insurer},
    }
    try:
        fast = op.input.write(payload)
    except BodyInvalid:
        with pytest.raises(BodyInvalid):
            op.input.write_slowly(payload)
        with pytest.raises(ValueError, match="XML compatible"):
            zop.input.serialize(**payload)
        return
    assert fast == op.input.write_slowly(payload)
    ours = open_envelope(parse(op.envelope.render([], fast))).first
    theirs = open_envelope(zop.input.serialize(**payload).content).first
    assert _shape(ours) == _shape(theirs)


@pytest.fixture
def hk_op(soap_root) -> tuple[Any, Any]:
    """The compiled HK renewal operation and zeep's operation for the same WSDL."""
    from adapters.soap import compile_partner, wsdl_port

    partner = load_config(soap_root(), protocols()).partners["hk"]
    op = compile_partner(partner)["TD-VL-RENEW", "application"]
    return op, wsdl_port(partner.options["soap"]).binding.get(op.name)


CHOICE_WSDL = """<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:t="urn:t" targetNamespace="urn:t">
  <wsdl:types><xs:schema targetNamespace="urn:t" elementFormDefault="qualified">
    <xs:element name="Apply"><xs:complexType><xs:sequence>
      <xs:element name="reference" type="xs:string"/>
      <xs:choice>
        <xs:element name="hkid" type="xs:string"/><xs:element name="passport" type="xs:string"/>
      </xs:choice>
    </xs:sequence></xs:complexType></xs:element>
    <xs:element name="Applied"><xs:complexType><xs:sequence>
      <xs:element name="ref_no" type="xs:string"/><xs:element name="status" type="xs:string"/>
    </xs:sequence></xs:complexType></xs:element>
  </xs:schema></wsdl:types>
  <wsdl:message name="In"><wsdl:part name="p" element="t:Apply"/></wsdl:message>
  <wsdl:message name="Out"><wsdl:part name="p" element="t:Applied"/></wsdl:message>
  <wsdl:portType name="PT"><wsdl:operation name="Apply">
    <wsdl:input message="t:In"/><wsdl:output message="t:Out"/></wsdl:operation></wsdl:portType>
  <wsdl:binding name="B" type="t:PT"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="Apply"><soap:operation soapAction="urn:t/Apply"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation></wsdl:binding>
  <wsdl:service name="S"><wsdl:port name="P" binding="t:B">
    <soap:address location="http://example.invalid/"/></wsdl:port></wsdl:service>
</wsdl:definitions>
"""


async def test_types_the_compiler_lacks_fall_back_to_zeep(soap_root) -> None:
    """An xs:choice input is serialised by zeep: it still delivers, and zeep's checks still hold."""
    root = soap_root(wsdl={"hk-td-vehicle-licensing.wsdl": CHOICE_WSDL}, hk_operation="Apply")
    text = (
        (root / "partners.yaml")
        .read_text()
        .replace(
            '      idempotency_header: "{urn:hk:gov:td:vehicle-licensing:2025}RequestId"\n', ""
        )
    )
    (root / "partners.yaml").write_text(text)
    async with running(root) as rig:
        assert not rig.adapters["hk"]._operations["TD-VL-RENEW", "application"].compiled
        reply = await rig.adapters["hk"].send(
            request("hk", payload={"reference": "R-1", "passport": "K12345678"})
        )
        assert rig.sims["hk"].seen["key-1"].first_body["passport"] == "K12345678"
        with pytest.raises(PermanentError):
            await rig.adapters["hk"].send(request("hk", "k2", payload={"passport": "K1"}))
    assert reply.body["ref_no"].startswith("HK")


# --- hostile replies ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve(handler: Callable[[web.Request], Any]) -> AsyncIterator[str]:
    """One aiohttp handler for every path, on loopback."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner, url = await start_site(app)
    try:
        yield url
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def hostile(replies: dict[str, bytes | Callable[..., Any]]) -> AsyncIterator[str]:
    """A 'partner' answering each path with the given body (200, text/xml) or handler."""

    async def handler(req: web.Request) -> web.StreamResponse:
        await req.read()
        found = replies[req.path.strip("/")]
        if callable(found):
            return await found(req)
        return web.Response(body=found, content_type="text/xml")

    async with serve(handler) as url:
        yield url


@contextlib.asynccontextmanager
async def canary() -> AsyncIterator[list[int]]:
    """A TCP listener on loopback that counts connections: nothing should ever reach it."""
    hits: list[int] = []

    async def seen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(1)
        writer.close()

    server = await asyncio.start_server(seen, "127.0.0.1", 0)
    hits.append(server.sockets[0].getsockname()[1])  # hits[0] is the port
    try:
        yield hits
    finally:
        server.close()
        await server.wait_closed()


def _mo_reply() -> bytes:
    return (
        b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>'
        b'<d:RespostaPedidoCertificadoRegistoCriminal xmlns:d="urn:mo:gov:dsi:registo-criminal:2025">'
        b"<d:numeroPedido>DSI-2025-1</d:numeroPedido><d:estado>RECEBIDO</d:estado>"
        b"<d:dataRecepcao>2025-09-02</d:dataRecepcao>"
        b"</d:RespostaPedidoCertificadoRegistoCriminal></e:Body></e:Envelope>"
    )


def mo_keeping(kept: list[bytes]) -> Callable[[web.Request], Any]:
    """mo's service: takes every request, keeping its body in ``kept``, and answers received."""

    async def handler(req: web.Request) -> web.Response:
        kept.append(await req.read())
        return web.Response(body=_mo_reply(), content_type="application/soap+xml")

    return handler


def _text_node_20mb(*, announced: bool) -> Callable[[web.Request], Any]:
    """A 20 MB text node, written 1 MB at a time (with or without Content-Length)."""
    head = b"<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/'><e:Body><a>"
    tail = b"</a></e:Body></e:Envelope>"
    chunk = b"x" * (1024 * 1024)

    async def handler(req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/xml"})
        if announced:
            resp.content_length = len(head) + 20 * len(chunk) + len(tail)
        await resp.prepare(req)
        with contextlib.suppress(ConnectionError):
            await resp.write(head)
            for _ in range(20):
                await resp.write(chunk)
            await resp.write(tail)
        return resp

    return handler


def _gzip_bomb() -> bytes:
    """About 200 MB of XML text once inflated, a few hundred KB on the wire."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [z.compress(b"<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/'><a>")]
    block = b"A" * (1024 * 1024)
    parts += [z.compress(block) for _ in range(200)]
    parts.append(z.compress(b"</a></e:Envelope>") + z.flush())
    return b"".join(parts)


async def _bomb(req: web.Request) -> web.Response:
    return web.Response(body=BOMB, headers={"Content-Type": "text/xml", "Content-Encoding": "gzip"})


BOMB = _gzip_bomb()


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("billion-laughs", "doctype"),
        ("quadratic-blowup", "doctype"),
        ("xxe-file", "doctype"),
        ("xxe-http", "doctype"),
        ("doctype-system", "doctype"),
        ("deep-nesting", "depth"),
        ("text-20mb", "over 1048576 bytes"),
        ("text-20mb-streamed", "over 1048576 bytes"),
        ("gzip-bomb", "over 1048576 bytes (after decompression)"),
        ("not-soap", "not a SOAP Envelope"),
    ],
)
async def test_hostile_replies_are_refused_with_bounded_memory(
    soap_root, tmp_path: Path, attack: str, reason: str
) -> None:
    """Each XML attack in a 200 reply: a clear UnknownOutcomeError, no crash, no fetch, bounded memory."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    async with canary() as hits:
        port = hits[0]
        replies: dict[str, Any] = {
            "billion-laughs": BILLION_LAUGHS,
            "quadratic-blowup": QUADRATIC,
            "xxe-file": xxe_file(secret),
            "xxe-http": (
                f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM '
                f'"http://127.0.0.1:{port}/steal">]><r>&x;</r>'
            ).encode(),
            "doctype-system": DTD_SYSTEM.replace(b"127.0.0.1:9", f"127.0.0.1:{port}".encode()),
            "deep-nesting": b"<a>" * 10_000 + b"</a>" * 10_000,
            "text-20mb": _text_node_20mb(announced=True),
            "text-20mb-streamed": _text_node_20mb(announced=False),
            "gzip-bomb": _bomb,
            "not-soap": b"<html><body>Service temporarily moved</body></html>",
        }
        async with (
            hostile(replies) as url,
            running(soap_root(), endpoints={"hk": f"{url}/{attack}"}) as rig,
        ):
            with Bounded() as used, pytest.raises(UnknownOutcomeError) as info:
                await rig.adapters["hk"].send(request("hk"))
        assert hits[1:] == [], "the canary saw a connection"
    exc = info.value
    assert reason in exc.message
    assert "TOP-SECRET-VALUE" not in json.dumps(exc.transcript.response)
    assert used.heap < 32 * 1024 * 1024
    assert used.rss_growth < 128 * 1024 * 1024


# --- WSDL loading ---------------------------------------------------------------------------------


def _wsdl_with(prefix: str = "", schema_extra: str = "") -> str:
    text = (REPO / "partners" / "wsdl" / "hk-td-vehicle-licensing.wsdl").read_text()
    text = text.replace('<?xml version="1.0" encoding="UTF-8"?>\n', prefix, 1)
    opening = 'elementFormDefault="qualified">'
    return text.replace(opening, opening + schema_extra, 1)


@pytest.mark.parametrize("attack", ["billion-laughs", "xxe-file", "xxe-http", "doctype-system"])
async def test_hostile_wsdls_are_refused_at_load(soap_root, tmp_path: Path, attack: str) -> None:
    """A WSDL with a DOCTYPE (entities, XXE, external DTD) is a config error; nothing is fetched."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    async with canary() as hits:
        url = f"http://127.0.0.1:{hits[0]}"
        doctype = {
            "billion-laughs": BILLION_LAUGHS.decode()
            .split("<lolz>")[0]
            .replace("lolz", "wsdl:definitions"),
            "xxe-file": f'<!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>',
            "xxe-http": f'<!DOCTYPE d [<!ENTITY x SYSTEM "{url}/x">]>',
            "doctype-system": f'<!DOCTYPE d SYSTEM "{url}/evil.dtd">',
        }[attack]
        root = soap_root(wsdl={"hk-td-vehicle-licensing.wsdl": _wsdl_with(doctype + "\n")})
        found = await asyncio.to_thread(problems_of, root)
        assert hits[1:] == []
    assert len(found) == 1 and found[0].startswith("partners.yaml:11: partners[0].soap.wsdl: ")
    assert "document type declarations are not accepted" in found[0]


@pytest.mark.parametrize("where", ["http", "outside"])
async def test_wsdl_imports_are_read_from_the_config_directory_only(
    soap_root, tmp_path: Path, where: str
) -> None:
    """An xs:import by URL is refused unfetched (the canary stays silent); so is a file outside."""
    (tmp_path / "outside.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:o"/>'
    )
    async with canary() as hits:
        location = {"http": f"http://127.0.0.1:{hits[0]}/evil.xsd", "outside": "../../outside.xsd"}
        extra = f'<xs:import namespace="urn:o" schemaLocation="{location[where]}"/>'
        root = soap_root(wsdl={"hk-td-vehicle-licensing.wsdl": _wsdl_with(schema_extra=extra)})
        found = await asyncio.to_thread(problems_of, root)
        assert hits[1:] == []
    expected = "tongban never fetches a schema" if where == "http" else "is outside"
    assert len(found) == 1 and expected in found[0], found


async def test_a_wsdl_import_problem_is_reported_at_the_wsdl_even_beside_a_port(
    soap_root,
) -> None:
    """A refused import names the wsdl setting, also when the section names its port (the
    message's word "imports" once sent it to soap.port)."""
    async with canary() as hits:
        extra = f'<xs:import namespace="urn:o" schemaLocation="http://127.0.0.1:{hits[0]}/x.xsd"/>'
        root = soap_root(
            hk_extra="      port: VehicleLicensingSoap11Port",
            wsdl={"hk-td-vehicle-licensing.wsdl": _wsdl_with(schema_extra=extra)},
        )
        found = await asyncio.to_thread(problems_of, root)
    assert len(found) == 1 and found[0].startswith("partners.yaml:11: partners[0].soap.wsdl: ")


def test_a_binding_of_a_missing_port_type_is_a_problem_not_a_traceback(soap_root) -> None:
    """zeep raises IndexError for a binding whose portType the file lacks: it is a problem of
    the WSDL at its setting's line, like any other broken WSDL."""
    text = _wsdl_with().replace('type="td:VehicleLicensingPortType"', 'type="td:NoSuchType"')
    found = problems_of(soap_root(wsdl={"hk-td-vehicle-licensing.wsdl": text}))
    assert len(found) == 1 and found[0].startswith("partners.yaml:11: partners[0].soap.wsdl: ")
    assert "NoSuchType" in found[0]


def test_the_catalogue_wsdls_load_through_the_hardened_transport() -> None:
    """Both catalogue WSDLs load through the hardened transport; their ports are as documented."""
    from adapters.wsdl import find_port, load_document

    root = REPO / "partners"
    hk = find_port(load_document(root / "wsdl" / "hk-td-vehicle-licensing.wsdl", root), None, None)
    mo = find_port(load_document(root / "wsdl" / "mo-dsi-registo-criminal.wsdl", root), None, None)
    assert (hk.service, hk.name, hk.version.name) == (
        "VehicleLicensingService",
        "VehicleLicensingSoap11Port",
        "1.1",
    )
    assert (mo.service, mo.version.name) == ("ServicoRegistoCriminal", "1.2")
    assert "PedirCertificadoRegistoCriminal" in mo.operations
