"""Notices in the partner's dialect over SOAP: Macao hears our word on what it filed as a call of
NotificarDecisao, an operation of its own WSDL, served here by spyne (a SOAP stack we did not
write, validating every request against its schema) and checked in spyne's own log.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

import aiohttp
import pytest

from adapters.registry import protocols
from federation.config import load_config
from federation.domain.models import State
from federation.runtime.notices import channel_partner
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_notices import notice_events
from tests.integration.test_soap_spyne import _Quiet
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning"),
]

NS = "urn:mo:gov:safp:intercambio:2025"
HEADER = "{urn:tongban:header}IdempotencyKey"
MO_KEY = "mo-partner-secret-key-0001"
LOCAL_KEY = "gd-local-system-key-0001"
PARTNERS_YAML = f"""\
version: 1
defaults:
  timeouts: {{connect: 1s, read: 5s, total: 10s}}
  retry: {{max_attempts: 3, backoff_base: 50ms, backoff_cap: 200ms, jitter: 0}}
local:
  name: {{zh: 广东省政务服务一体化平台, en: Guangdong Integrated Government Services Platform}}
  region: {{code: "44", iso: CN-GD}}
  protocol: rest
  endpoint: https://zwfw.gd.gov.cn/tongban/inbound
  keys_sha256: ["{hashlib.sha256(LOCAL_KEY.encode()).hexdigest()}"]
partners:
  - id: mo
    name: {{zh: 澳門特別行政區政府, en: Macao SAR Government (spyne)}}
    region: {{code: "82", iso: CN-MO}}
    protocol: soap
    endpoint: {{url}}
    soap:
      wsdl: spyne.wsdl
      idempotency_header: "{HEADER}"
    services:
      DSI-CRC-REQ:
        mapping: out.yaml
        operation: NotificarDecisao
    inbound:
      keys_sha256: ["{hashlib.sha256(MO_KEY.encode()).hexdigest()}"]
      services:
        GD-HQ-BR-MO:
          mapping: inbound.yaml
          path: /applications/branch-registrations
          report:
            operation: NotificarDecisao
            reply: {{code: codigoResultado, message: mensagem, success: {{code: ["0"]}}, permanent: ["/^E/"]}}
"""
OUT_MAPPING = """\
mapping: 1
request:
  referenciaPedido: {from: ref, required: true}
  fase: {value: SUBMETIDO}
  dataFase: {from: at, required: true}
"""
INBOUND_MAPPING = """\
mapping: 1
partner: mo
service: GD-HQ-BR-MO
request:
  local_reference: {from: numeroReferencia, required: true}
  applicant.name: {from: requerente.nomeChines, required: true}
response:
  receipt_number: {from: acceptance_no, required: true}
report:
  referenciaPedido: {from: application.numeroReferencia, required: true}
  numeroProcesso: {first: [case_number, original.receipt.receipt_number]}
  fase:
    switch: step
    cases: {submitted: SUBMETIDO, accepted: ADMITIDO, correction_required: APERFEICOAMENTO}
    required: true
  dataFase: {from: at, required: true, transform: {datetime: {from: iso, to: iso, to_zone: Asia/Macau}}}
  observacoes: note
"""


def build_app(log: list[dict[str, Any]]) -> Any:
    """Macao's notice service in spyne: Portuguese names, the phase an enumeration, a reference
    it knows (SAFP-…) or a business refusal answered with HTTP 200 (codigoResultado E404)."""
    from spyne import Application, ComplexModel, DateTime, ServiceBase, Unicode, rpc
    from spyne.protocol.soap import Soap11
    from spyne.server.wsgi import WsgiApplication

    phases = ["SUBMETIDO", "ADMITIDO", "APERFEICOAMENTO", "DEFERIDO", "CONCLUIDO"]

    class Notificacao(ComplexModel):
        __namespace__ = NS
        referenciaPedido = Unicode(min_occurs=1, nillable=False, max_len=80)
        numeroProcesso = Unicode(min_occurs=0, max_len=80)
        fase = Unicode(min_occurs=1, nillable=False, values=phases)
        dataFase = DateTime(min_occurs=1, nillable=False)
        observacoes = Unicode(min_occurs=0)

    class Recepcao(ComplexModel):
        __namespace__ = NS
        codigoResultado = Unicode
        mensagem = Unicode

    class NoticeService(ServiceBase):
        @rpc(Notificacao, _returns=Recepcao, _body_style="bare")
        def NotificarDecisao(ctx: Any, notice: Any) -> Any:
            headers = ctx.in_header_doc or []
            key = next((h.text for h in headers if h.tag == HEADER), None)
            known = notice.referenciaPedido.startswith("SAFP-")
            log.append(
                {
                    "key": key,
                    "fase": notice.fase,
                    "ref": notice.referenciaPedido,
                    "processo": notice.numeroProcesso,
                    "data": str(notice.dataFase),
                }
            )
            if not known:
                return Recepcao(codigoResultado="E404", mensagem="pedido desconhecido")
            return Recepcao(codigoResultado="0", mensagem="notificação recebida")

    app = Application(
        [NoticeService], tns=NS, in_protocol=Soap11(validator="lxml"), out_protocol=Soap11()
    )
    return WsgiApplication(app)


@pytest.fixture
def spyne_mo() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Macao's notice service on loopback; yields its URL and its own log."""
    log: list[dict[str, Any]] = []
    server: WSGIServer = make_server("127.0.0.1", 0, build_app(log), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
async def mo_config(spyne_mo, tmp_path: Path) -> Path:
    """A catalogue with Macao filing GD-HQ-BR-MO and hearing back by NotificarDecisao, its WSDL
    fetched from spyne once and saved, as an operator would."""
    url, _ = spyne_mo
    wsdl = await asyncio.to_thread(lambda: urllib.request.urlopen(url + "?wsdl", timeout=5).read())
    root = tmp_path / "mo"
    root.mkdir()
    (root / "spyne.wsdl").write_bytes(wsdl)
    (root / "out.yaml").write_text(OUT_MAPPING, encoding="utf-8")
    (root / "inbound.yaml").write_text(INBOUND_MAPPING, encoding="utf-8")
    (root / "partners.yaml").write_text(PARTNERS_YAML.replace("{url}", url), encoding="utf-8")
    return root


async def file_one(url: str, key: str, reference: str) -> str:
    """Macao files a branch registration under ``key``; its exchange id."""
    application = {"numeroReferencia": reference, "requerente": {"nomeChines": "黃志明"}}
    body = {"service": "GD-HQ-BR-MO", "application": application}
    headers = {"Authorization": f"Bearer {MO_KEY}", "Idempotency-Key": key}
    async with (
        aiohttp.ClientSession(base_url=url) as http,
        http.post("/v1/partners/mo/applications", json=body, headers=headers) as r,
    ):
        assert r.status == 202, await r.text()
        xid: str = (await r.json())["id"]
    return xid


async def test_macao_hears_each_step_through_its_own_soap_operation(
    mo_config: Path, spyne_mo, simulators, broker_at
) -> None:
    """Delivered, then 补正 with a note: two NotificarDecisao calls spyne validated and logged, in
    Macao's words (SUBMETIDO, APERFEICOAMENTO), each with its own idempotency key in the header."""
    _, log = spyne_mo
    sims = {"local": (await simulators(mo_config))["local"]}
    async with broker_at(mo_config, sims) as (broker, url):
        xid = await file_one(url, "SAFP-HQ-2026-0007", "SAFP-HQ-2026-0007")
        await settle(broker, xid, DONE)
        await notice_events(broker, xid, "notice_delivered")
        decision = {"lifecycle": "correction_required", "note": "请补充章程公证本"}
        async with (
            aiohttp.ClientSession(base_url=url) as http,
            http.post(
                f"/v1/exchanges/{xid}/lifecycle",
                json=decision,
                headers={"Authorization": f"Bearer {LOCAL_KEY}"},
            ) as r,
        ):
            assert r.status == 200
        view = await wait_for(
            lambda: broker.get(xid),
            lambda ex: (
                ex is not None and [e.kind for e in ex.events].count("notice_delivered") == 2
            ),
            what="the 补正 notice to be delivered",
        )
    assert [(n["key"], n["fase"]) for n in log] == [
        (f"{xid}:delivered", "SUBMETIDO"),
        (f"{xid}:lifecycle:correction_required", "APERFEICOAMENTO"),
    ]
    attempts = [e for e in view.events if e.kind == "notice_attempt"]
    assert attempts[1].data["request"]["operation"] == "NotificarDecisao"
    assert attempts[1].data["outcome"] == "delivered"


async def test_macaos_business_refusal_is_not_a_delivery(
    mo_config: Path, spyne_mo, simulators, broker_at
) -> None:
    """spyne answers HTTP 200 with codigoResultado E404: the notice is rejected with Macao's code
    and message, sent once, never delivered."""
    _, log = spyne_mo
    sims = {"local": (await simulators(mo_config))["local"]}
    async with broker_at(mo_config, sims) as (broker, url):
        xid = await file_one(url, "MO-UNKNOWN-1", "OUTRO-0001")
        view = await notice_events(broker, xid, "notice_rejected")
    [attempt] = [e for e in view.events if e.kind == "notice_attempt"]
    assert attempt.data["error"]["partner_code"] == "E404"
    assert attempt.data["error"]["partner_message"] == "pedido desconhecido"
    assert "notice_delivered" not in [e.kind for e in view.events]
    assert [n["ref"] for n in log] == ["OUTRO-0001"]
    assert view.state is State.DELIVERED


def test_the_route_is_the_partners_own_soap_endpoint(mo_config: Path) -> None:
    """The notice route of a SOAP partner: its endpoint and WSDL, one item calling the operation."""
    config = load_config(mo_config, protocols())
    partner = config.partners["mo"]
    route = channel_partner(partner, partner.inbound.services["GD-HQ-BR-MO"])  # type: ignore[union-attr]
    assert (route.protocol, route.endpoint) == ("soap", partner.endpoint)
    assert route.services["GD-HQ-BR-MO"].options["soap"].operation == "NotificarDecisao"
