"""Self-tests of the foreign partner simulators, driven by clients that know nothing of the broker.

The REST platform is driven with aiohttp, the spyne service with zeep (from its saved WSDL), the
X-Road stub with zeep (its WSDL loaded offline through a catalogue) and with raw envelopes. Every
outcome is checked in the partner's own log.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.transports import Transport

from tests.foreign import xroad_stub as xr
from tests.foreign.envelope_platform import SUBMIT_PATH, EnvelopePlatform, ric_is_valid
from tests.foreign.spyne_nested_header import ServicoPedidosMacau

pytestmark = pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning")

# ---------------------------------------------------------------- the provincial open platform

APPLICATION = {
    "itemCode": "350000-SB-001",
    "applicantName": "林燊",
    "certType": "111",
    "certNo": "350203199208200046",
    "regionCode": "350203000000",
    "mobile": "+8613800000000",
}


@pytest.fixture
async def platform() -> AsyncIterator[EnvelopePlatform]:
    async with EnvelopePlatform(busy_first=0) as running:
        yield running


async def submit(
    base_url: str, body: Any, request_id: str | None = "REQ-0001", app_id: str = "fj-open-tongban"
) -> tuple[int, dict[str, Any]]:
    headers = {"X-App-Id": app_id}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url + SUBMIT_PATH, json=body, headers=headers) as answer,
    ):
        return answer.status, await answer.json()


@pytest.mark.parametrize(
    "number",
    ["11010519491231002X", "350203199208200046", "810000197804160214", "820000198209300127"],
)
def test_platform_id_check_accepts_domain_examples(number: str) -> None:
    """The platform's MOD 11-2 check accepts the reference numbers, permits included."""
    assert ric_is_valid(number)


async def test_platform_accepts_a_valid_application_once(platform: EnvelopePlatform) -> None:
    """A valid application: code 0 with an FJ acceptNo, one new record in the platform's log."""
    status, answer = await submit(platform.base_url, APPLICATION)
    assert status == 200 and answer["code"] == 0 and answer["msg"] == "ok"
    assert answer["data"]["acceptNo"].startswith("FJ") and answer["data"]["duplicate"] is False
    [entry] = platform.read_log()
    assert entry == {
        "requestId": "REQ-0001",
        "code": 0,
        "msg": "ok",
        "acceptNo": answer["data"]["acceptNo"],
        "record": "new",
    }


async def test_platform_refuses_a_bad_check_digit_inside_http_200(
    platform: EnvelopePlatform,
) -> None:
    """A wrong ID check character: HTTP 200 but code 1001, and no record."""
    status, answer = await submit(
        platform.base_url, {**APPLICATION, "certNo": "350203199208200047"}
    )
    assert (status, answer["code"], answer["msg"]) == (200, 1001, "身份证号码校验失败")
    assert [(e["code"], e["record"]) for e in platform.read_log()] == [(1001, None)]
    assert platform.records() == []


async def test_platform_refuses_a_missing_field(platform: EnvelopePlatform) -> None:
    """A missing required field: code 1002 naming the field."""
    body = {k: v for k, v in APPLICATION.items() if k != "regionCode"}
    _, answer = await submit(platform.base_url, body)
    assert answer["code"] == 1002 and answer["data"] == {"field": "regionCode"}


@pytest.mark.parametrize(
    ("request_id", "app_id", "code"),
    [(None, "fj-open-tongban", 1003), ("REQ-1", "someone-else", 4010)],
)
async def test_platform_refuses_calls_without_its_headers(
    platform: EnvelopePlatform, request_id: str | None, app_id: str, code: int
) -> None:
    """No X-Request-Id is 1003; a wrong X-App-Id is 4010."""
    _, answer = await submit(platform.base_url, APPLICATION, request_id=request_id, app_id=app_id)
    assert answer["code"] == code
    assert platform.read_log()[-1]["code"] == code


async def test_platform_is_busy_n_times_then_accepts() -> None:
    """busy_first=2: the same request id gets 5003 twice, then one record."""
    async with EnvelopePlatform(busy_first=2) as busy:
        codes = [(await submit(busy.base_url, APPLICATION))[1]["code"] for _ in range(3)]
        assert codes == [5003, 5003, 0]
        assert [e["code"] for e in busy.read_log()] == [5003, 5003, 0]
        assert len(busy.records()) == 1


async def test_platform_same_request_id_makes_one_record(platform: EnvelopePlatform) -> None:
    """A repeated X-Request-Id answers the first acceptNo, flagged duplicate, with no new record."""
    _, first = await submit(platform.base_url, APPLICATION)
    _, second = await submit(platform.base_url, APPLICATION)
    assert second["data"]["acceptNo"] == first["data"]["acceptNo"]
    assert second["data"]["duplicate"] is True
    assert [e["record"] for e in platform.read_log()] == ["new", "repeat"]
    assert len(platform.records()) == 1


async def test_platform_refuses_another_body_under_a_used_id(platform: EnvelopePlatform) -> None:
    """The same X-Request-Id with a different application: code 1005."""
    await submit(platform.base_url, APPLICATION)
    _, answer = await submit(platform.base_url, {**APPLICATION, "applicantName": "余丽萍"})
    assert answer["code"] == 1005 and len(platform.records()) == 1


async def test_platform_answers_unknown_paths_in_its_envelope(platform: EnvelopePlatform) -> None:
    """Even an unknown path is HTTP 200 with a business code (4040)."""
    async with aiohttp.ClientSession() as session, session.get(platform.base_url + "/nope") as r:
        assert r.status == 200 and (await r.json())["code"] == 4040


# ---------------------------------------------------------------- the Macau spyne service

PEDIDO = {
    "numeroBIR": "1234567(8)",
    "nome": "陳大文",
    "dataNascimento": dt.date(1982, 9, 30),
    "tipoServico": "AUTORIZACAO_RESIDENCIA",
    "freguesia": "Sé",
}


@pytest.fixture
def macau(tmp_path: Path) -> Iterator[tuple[ServicoPedidosMacau, Any]]:
    with ServicoPedidosMacau(indisponivel_primeiras=0) as servico:
        yield servico, zeep.Client(str(servico.save_wsdl(tmp_path / "pedidos.wsdl"))).service


def cabecalho(chave: str | None, remetente: str = "tongban-gd") -> dict[str, Any]:
    return {"Cabecalho": {"ChaveIdempotencia": chave, "Remetente": remetente}}


def test_spyne_wsdl_declares_the_nested_header(tmp_path: Path) -> None:
    """The saved WSDL binds Cabecalho as a soap:header and carries the BIR pattern."""
    with ServicoPedidosMacau() as servico:
        text = servico.save_wsdl(tmp_path / "pedidos.wsdl").read_text(encoding="utf-8")
    assert 'part="Cabecalho"' in text and 'name="ChaveIdempotencia"' in text
    assert r"[157]\d{6}\(?\d\)?" in text


def test_spyne_accepts_a_valid_request_once(macau: tuple[ServicoPedidosMacau, Any]) -> None:
    """A valid Pedido with a key: a receipt, logged as a new record with key and sender."""
    servico, service = macau
    recibo = service.SubmeterPedido(pedido=PEDIDO, _soapheaders=cabecalho("MO-0001"))
    assert recibo.numeroRecibo.startswith("DSI-") and recibo.chaveIdempotencia == "MO-0001"
    assert servico.read_log() == [
        {
            "chave": "MO-0001",
            "remetente": "tongban-gd",
            "recibo": recibo.numeroRecibo,
            "registo": "novo",
            "falha": None,
            "resultado": "aceite",
        }
    ]


@pytest.mark.parametrize("chave", [None, "", "   "])
def test_spyne_refuses_a_missing_key(macau: tuple[ServicoPedidosMacau, Any], chave: Any) -> None:
    """No header, or an empty ChaveIdempotencia: a Client fault and no record."""
    servico, service = macau
    headers = {} if chave is None else {"_soapheaders": cabecalho(chave)}
    with pytest.raises(Fault) as raised:
        service.SubmeterPedido(pedido=PEDIDO, **headers)
    assert raised.value.code.endswith("Client.ChaveIdempotenciaEmFalta")
    assert [e["falha"] for e in servico.read_log()] == ["Client.ChaveIdempotenciaEmFalta"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            {"dataNascimento": dt.date.today() - dt.timedelta(days=365 * 10)},
            "Client.RequerenteMenor",
        ),
        ({"numeroBIR": "5123456(7)"}, "Client.BIRCancelado"),
        ({"numeroBIR": "9234567(8)"}, "Client.SchemaValidationError"),
    ],
)
def test_spyne_refuses_permanently_with_client_faults(
    macau: tuple[ServicoPedidosMacau, Any], change: dict[str, Any], code: str
) -> None:
    """Business refusals and schema errors are Client faults, logged as refused."""
    servico, service = macau
    with pytest.raises(Fault) as raised:
        service.SubmeterPedido(pedido={**PEDIDO, **change}, _soapheaders=cabecalho("MO-0002"))
    assert raised.value.code.endswith(code)
    assert [(e["resultado"], e["falha"]) for e in servico.read_log()] == [("recusado", code)]


def test_spyne_is_unavailable_n_times_then_accepts(tmp_path: Path) -> None:
    """indisponivel_primeiras=2: two Server faults for the key, then a receipt."""
    with ServicoPedidosMacau(indisponivel_primeiras=2) as servico:
        service = zeep.Client(str(servico.save_wsdl(tmp_path / "p.wsdl"))).service
        for _ in range(2):
            with pytest.raises(Fault) as raised:
                service.SubmeterPedido(pedido=PEDIDO, _soapheaders=cabecalho("MO-0003"))
            assert raised.value.code.endswith("Server.IndisponivelTemporariamente")
        recibo = service.SubmeterPedido(pedido=PEDIDO, _soapheaders=cabecalho("MO-0003"))
        outcomes = [e["resultado"] for e in servico.read_log()]
    assert outcomes == ["indisponivel", "indisponivel", "aceite"] and recibo.numeroRecibo


def test_spyne_same_key_returns_the_same_receipt(macau: tuple[ServicoPedidosMacau, Any]) -> None:
    """The same key twice: one record, the same receipt number."""
    servico, service = macau
    first = service.SubmeterPedido(pedido=PEDIDO, _soapheaders=cabecalho("MO-0004"))
    again = service.SubmeterPedido(pedido=PEDIDO, _soapheaders=cabecalho("MO-0004"))
    assert again.numeroRecibo == first.numeroRecibo
    assert [e["registo"] for e in servico.read_log()] == ["novo", "repetido"]


# ---------------------------------------------------------------- the X-Road security server stub

NS = {"s": xr.SOAP, "xrd": xr.XRD, "id": xr.ID, "p": xr.TNS}
CLIENT = {
    "objectType": "SUBSYSTEM",
    "xRoadInstance": "CN-GD",
    "memberClass": "GOV",
    "memberCode": "91440101MA9Y7Q2B6P",
    "subsystemCode": "tongban",
}
SERVICE = {"objectType": "SERVICE", **dict(xr.DEFAULT_SERVICE.parts)}
REQUEST = """\
<SOAP-ENV:Envelope xmlns:SOAP-ENV="{s}" xmlns:xrd="{xrd}" xmlns:id="{id}" xmlns:p="{p}">
  <SOAP-ENV:Header>
    <xrd:client id:objectType="SUBSYSTEM">
      <id:xRoadInstance>CN-GD</id:xRoadInstance><id:memberClass>GOV</id:memberClass>
      <id:memberCode>91440101MA9Y7Q2B6P</id:memberCode><id:subsystemCode>tongban</id:subsystemCode>
    </xrd:client>
    <xrd:service id:objectType="SERVICE">
      <id:xRoadInstance>CN-GD</id:xRoadInstance><id:memberClass>GOV</id:memberClass>
      <id:memberCode>11440000MB2C92227Y</id:memberCode>
      <id:subsystemCode>certificate-verification</id:subsystemCode>
      <id:serviceCode>verifyCertificate</id:serviceCode><id:serviceVersion>v1</id:serviceVersion>
    </xrd:service>
    <xrd:id>MESSAGE-ID</xrd:id>
    <xrd:userId>CN440106199208200046</xrd:userId>
    <xrd:issue>12441500196720244T3442199806003202603140001</xrd:issue>
    <xrd:protocolVersion>4.0</xrd:protocolVersion>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>
    <p:verifyCertificate>
      <p:uscc>91440101MA9Y7Q2B6P</p:uscc><p:entityName>广州某某科技有限公司</p:entityName>
      <p:requestKey>GD-KEY-0001</p:requestKey>
    </p:verifyCertificate>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>""".format(**NS)


class CatalogueTransport(Transport):
    """Resolves the published schema locations to the local copies; any other fetch fails."""

    def __init__(self) -> None:
        super().__init__()
        self.resolved: list[str] = []

    def load(self, url: str) -> bytes:
        if url in xr.CATALOGUE:
            self.resolved.append(url)
            return xr.CATALOGUE[url].read_bytes()
        if url.startswith(("http://", "https://")):
            raise AssertionError(f"network fetch attempted: {url}")
        return bytes(super().load(url))


def request(**texts: str) -> Any:
    """The sample request as a tree, with a fresh xrd:id; texts set elements by XPath."""
    root = etree.fromstring(REQUEST.encode())
    root.find(".//xrd:id", NS).text = str(uuid.uuid4())
    for path, text in texts.items():
        root.find(path, NS).text = text
    return root


def without(root: Any, path: str) -> Any:
    """The request with every element at ``path`` removed."""
    for element in root.xpath(path, namespaces=NS):
        element.getparent().remove(element)
    return root


async def post(
    url: str, root: Any, content_type: str = "text/xml; charset=UTF-8"
) -> tuple[int, Any]:
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers={"Content-Type": content_type}) as answer,
    ):
        return answer.status, etree.fromstring(await answer.read())


def faultcode(root: Any) -> str:
    return str(root.findtext(".//faultcode"))


@pytest.fixture
def stub() -> Iterator[xr.XRoadStub]:
    with xr.XRoadStub() as running:
        yield running


def test_xroad_wsdl_imports_xroad_xsd_and_loads_offline() -> None:
    """The WSDL imports xroad.xsd from its network location; zeep loads it via the catalogue only."""
    wsdl = etree.parse(str(xr.WSDL_PATH))
    locations = wsdl.xpath(
        "//xs:import/@schemaLocation", namespaces={"xs": "http://www.w3.org/2001/XMLSchema"}
    )
    assert locations == ["http://x-road.eu/xsd/xroad.xsd"]
    transport = CatalogueTransport()
    client = zeep.Client(str(xr.WSDL_PATH), transport=transport)
    assert set(transport.resolved) == set(xr.CATALOGUE)
    assert "verifyCertificate" in dir(client.service)


def test_xroad_local_schemas_validate_the_sample_headers() -> None:
    """The local xroad.xsd (with its imports resolved locally) accepts every header of the sample."""

    class Local(etree.Resolver):  # type: ignore[misc]
        def resolve(self, url: str, pubid: str, context: Any) -> Any:
            return (
                self.resolve_filename(str(xr.CATALOGUE[url]), context)
                if url in xr.CATALOGUE
                else None
            )

    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(Local())
    schema = etree.XMLSchema(
        etree.parse(str(xr.CATALOGUE["http://x-road.eu/xsd/xroad.xsd"]), parser)
    )
    for element in request().find("s:Header", NS):
        schema.assertValid(etree.ElementTree(copy.deepcopy(element)))


def test_xroad_answers_a_valid_request_through_zeep(stub: xr.XRoadStub) -> None:
    """zeep, with the X-Road headers, gets VALID and a verificationNo; the stub logs ids and outcome."""
    client = zeep.Client(str(xr.WSDL_PATH), transport=CatalogueTransport())
    binding = f"{{{xr.TNS}}}verifyCertificateBinding"
    service = client.create_service(binding, stub.url)
    message_id = str(uuid.uuid4())
    headers = {"client": CLIENT, "service": SERVICE, "id": message_id, "protocolVersion": "4.0"}
    answer = service.verifyCertificate(
        uscc="91440101MA9Y7Q2B6P", requestKey="GD-KEY-0009", _soapheaders=headers
    )
    assert answer.body.result == "VALID" and answer.body.verificationNo.startswith("GDV")
    assert answer.header.id == message_id
    [entry] = stub.read_log()
    assert entry["messageId"] == message_id and entry["outcome"] == "VALID"
    assert entry["client"] == "SUBSYSTEM:CN-GD/GOV/91440101MA9Y7Q2B6P/tongban"
    assert entry["service"].endswith("/certificate-verification/verifyCertificate/v1")


async def test_xroad_echoes_the_headers_in_order_and_adds_request_hash(stub: xr.XRoadStub) -> None:
    """The response repeats the request headers in order, then xrd:requestHash."""
    sent = request()
    status, answer = await post(stub.url, sent)
    assert status == 200
    names = [etree.QName(e).localname for e in answer.find("s:Header", NS)]
    assert names == ["client", "service", "id", "userId", "issue", "protocolVersion", "requestHash"]
    assert answer.findtext(".//xrd:id", namespaces=NS) == sent.findtext(".//xrd:id", namespaces=NS)
    assert answer.findtext(".//p:result", namespaces=NS) == "VALID"


@pytest.mark.parametrize(
    ("path", "code", "text"),
    [
        ("//xrd:protocolVersion", "Client.MissingHeaderField", "Required field 'protocolVersion'"),
        ("//xrd:client", "Client.MissingHeaderField", "Required field 'client'"),
        ("//xrd:id", "Client.MissingHeaderField", "Required field 'id'"),
        ("//xrd:service", "Client.MissingHeaderField", "must contain service id"),
        ("//xrd:client/id:memberCode", "Client.MissingHeaderField", "'client/memberCode'"),
        ("//xrd:service/id:serviceCode", "Client.MissingHeaderField", "'service/serviceCode'"),
        ("//xrd:client/@id:objectType", "Client.InvalidXml", "Missing objectType"),
        ("/s:Envelope/s:Header", "Client.MissingHeader", "header missing"),
        ("/s:Envelope/s:Body", "Client.MissingBody", "body missing"),
    ],
)
async def test_xroad_refuses_a_message_missing_a_required_part(
    stub: xr.XRoadStub, path: str, code: str, text: str
) -> None:
    """Each required header (or the body) removed: the security server's fault code."""
    root = request()
    if "@" in path:
        del root.find(".//xrd:client", NS).attrib[f"{{{xr.ID}}}objectType"]
    else:
        without(root, path)
    status, answer = await post(stub.url, root)
    assert status == 500 and faultcode(answer) == code
    assert text in str(answer.findtext(".//faultstring"))
    assert stub.read_log()[-1]["faultCode"] == code


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({".//xrd:protocolVersion": "3.1"}, "Client.InvalidProtocolVersion"),
        ({".//p:verifyCertificate": None}, "Client.InconsistentHeaders"),
        ({".//xrd:service/id:serviceCode": "getRandom"}, "Client.InconsistentHeaders"),
    ],
)
async def test_xroad_refuses_malformed_headers(
    stub: xr.XRoadStub, change: dict[str, Any], code: str
) -> None:
    """A protocol version other than 4.x, or a body that does not match the service code."""
    root = request(**{k: v for k, v in change.items() if v is not None})
    if ".//p:verifyCertificate" in change:
        root.find(".//p:verifyCertificate", NS).tag = f"{{{xr.TNS}}}getRandom"
    _, answer = await post(stub.url, root)
    assert faultcode(answer) == code


async def test_xroad_refuses_a_duplicate_field_and_a_wrong_object_type(stub: xr.XRoadStub) -> None:
    """Two xrd:id elements: DuplicateHeaderField; a client of type SERVICE: InvalidXml."""
    twice = request()
    header = twice.find("s:Header", NS)
    header.append(copy.deepcopy(header.find("xrd:id", NS)))
    assert faultcode((await post(stub.url, twice))[1]) == "Client.DuplicateHeaderField"
    wrong = request()
    wrong.find(".//xrd:client", NS).set(f"{{{xr.ID}}}objectType", "SERVICE")
    assert faultcode((await post(stub.url, wrong))[1]) == "Client.InvalidXml"


async def test_xroad_refuses_an_unknown_service_and_other_content_types(stub: xr.XRoadStub) -> None:
    """Another provider's service: Server.ServerProxy.UnknownService; JSON: InvalidContentType."""
    other = request(**{".//xrd:service/id:memberCode": "11440000MB2C92227Y-X"})
    assert faultcode((await post(stub.url, other))[1]) == "Server.ServerProxy.UnknownService"
    _, answer = await post(stub.url, request(), content_type="application/json")
    assert faultcode(answer) == "Client.InvalidContentType"


async def test_xroad_refuses_a_repeated_message_id(stub: xr.XRoadStub) -> None:
    """The same xrd:id twice: the second message is refused, whatever its body."""
    first = request()
    again = copy.deepcopy(first)
    assert (await post(stub.url, first))[0] == 200
    status, answer = await post(stub.url, again)
    assert status == 500 and faultcode(answer) == "Client.InvalidRequest"
    assert [e["outcome"] for e in stub.read_log()] == ["VALID", "soap_fault"]


async def test_xroad_same_request_key_under_new_ids_is_one_record(stub: xr.XRoadStub) -> None:
    """A retry (new xrd:id, same requestKey) answers the first verificationNo; one record."""
    numbers = [
        (await post(stub.url, request()))[1].findtext(".//p:verificationNo", namespaces=NS)
        for _ in range(2)
    ]
    assert numbers[0] == numbers[1] and numbers[0].startswith("GDV")
    assert [e["record"] for e in stub.read_log()] == ["new", "repeat"]


async def test_xroad_is_unavailable_n_times_then_answers() -> None:
    """unavailable_first=2: NetworkError twice for the key, then VALID."""
    with xr.XRoadStub(unavailable_first=2) as stub:
        answers = [await post(stub.url, request()) for _ in range(3)]
        log = stub.read_log()
    assert [faultcode(a) for _, a in answers[:2]] == [
        "Server.ServerProxy.ServiceFailed.NetworkError"
    ] * 2
    assert answers[2][1].findtext(".//p:result", namespaces=NS) == "VALID"
    assert [e["outcome"] for e in log] == ["soap_fault", "soap_fault", "VALID"]


@pytest.mark.parametrize(
    ("uscc", "key", "result", "fault"),
    [
        ("91350211M0000XUF46", "GD-KEY-0002", "INVALID", None),
        ("91440101MA9Y7Q2B6", "GD-KEY-0003", "", "invalid_uscc_format"),
        ("91440101MA9Y7Q2B6P", "", "", "missing_request_key"),
    ],
)
async def test_xroad_business_answers_travel_at_http_200(
    stub: xr.XRoadStub, uscc: str, key: str, result: str, fault: str | None
) -> None:
    """A failing checksum is a recorded INVALID; a malformed code or no key is a body fault."""
    status, answer = await post(stub.url, request(**{".//p:uscc": uscc, ".//p:requestKey": key}))
    assert status == 200 and answer.find(".//s:Fault", NS) is None
    assert answer.findtext(".//p:result", namespaces=NS) == result
    assert answer.findtext(".//p:fault/p:faultCode", namespaces=NS) == fault
    assert stub.read_log()[-1]["outcome"] == ("body_fault" if fault else result)


async def test_xroad_refuses_a_malformed_envelope_or_body(stub: xr.XRoadStub) -> None:
    """A root that is not an Envelope: InvalidSoap; two body children: InvalidBody."""
    not_soap = etree.fromstring(b"<verifyCertificate/>")
    assert faultcode((await post(stub.url, not_soap))[1]) == "Client.InvalidSoap"
    two = request()
    body = two.find("s:Body", NS)
    body.append(copy.deepcopy(body[0]))
    assert faultcode((await post(stub.url, two))[1]) == "Client.InvalidBody"


async def test_xroad_accepts_an_unversioned_service_and_can_fault_at_http_200() -> None:
    """No serviceVersion still reaches v1; fault_status=200 sends faults with HTTP 200."""
    with xr.XRoadStub(fault_status=200) as stub:
        unversioned = without(request(), "//id:serviceVersion")
        status, answer = await post(stub.url, unversioned)
        assert status == 200 and answer.findtext(".//p:result", namespaces=NS) == "VALID"
        status, answer = await post(stub.url, without(request(), "//xrd:id"))
        assert status == 200 and faultcode(answer) == "Client.MissingHeaderField"
