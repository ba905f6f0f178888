"""Two SOAP partners we did not write, onboarded by YAML alone under tests/foreign/onboarding/, driven
through a real broker and checked in each partner's own log.

* Macau's spyne service (``spyne/``): the idempotency key in a NESTED header element
  (``Cabecalho/ChaveIdempotencia``), a fixed ``Remetente``, faults as HTTP 500 with spyne's
  ``soap11env:`` codes.
* Guangdong's X-Road 4.0 service behind a security server stub (``xroad/``): the X-Road headers
  from the partner's profile (a new ``xrd:id`` per message), ``xrd:issue`` from the mapping, the key
  in the body element ``requestKey``, business refusals in the body at HTTP 200 (reply rules), and a
  WSDL used exactly as published, its network imports mapped by the schema catalogue.

The configuration directory of each test is the onboarding YAML plus the partner's published files
saved where partners.yaml names them, as an operator would: spyne's WSDL from ``?wsdl``, the X-Road
WSDL and schemas from tests/foreign/xroad/.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from federation.api.server import running_broker
from federation.domain.models import Exchange, State
from federation.runtime.broker import Broker, Submission
from tests.foreign.spyne_nested_header import ServicoPedidosMacau
from tests.foreign.xroad_stub import CATALOGUE, WSDL_PATH, XRoadId, XRoadStub
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning"),
]

ONBOARDING = Path(__file__).resolve().parent / "onboarding"
SPYNE, SPYNE_SERVICE = "mo-dsi-pedidos", "DSI-PEDIDO-RESIDENCIA"
XROAD, XROAD_SERVICE = "gd-amr-xroad", "GD-AMR-USCC-VERIFY"
SPYNE_WSDL = "partners/wsdl/mo-dsi-servico-pedidos.wsdl"
XROAD_FILES = "partners/xroad"
ENDED = {State.DELIVERED, State.REJECTED, State.FAILED, State.UNCONFIRMED}
VALID_USCC = "91440101MA59TQ6U1K"
CLIENT = "SUBSYSTEM:CN-GD/GOV/11440100MB2C00017K/tongban"
SERVICE = "SERVICE:CN-GD/GOV/11440000MB2C92227Y/certificate-verification/verifyCertificate/v1"


def spyne_config(root: Path, servico: ServicoPedidosMacau) -> Path:
    """The spyne onboarding YAML and the WSDL the running service publishes, saved beside it."""
    shutil.copytree(ONBOARDING / "spyne", root)
    (root / SPYNE_WSDL).parent.mkdir(parents=True)
    servico.save_wsdl(root / SPYNE_WSDL)
    return root


def xroad_config(root: Path) -> Path:
    """The X-Road onboarding YAML and the published WSDL and schemas, saved unchanged."""
    shutil.copytree(ONBOARDING / "xroad", root)
    files = root / XROAD_FILES
    files.mkdir(parents=True)
    for source in (WSDL_PATH, *CATALOGUE.values()):
        shutil.copyfile(source, files / source.name)
    return root


def pedido(key: str, bir: str = "1234567(8)", born: str = "1985-03-02") -> Submission:
    """An application for the Macau office."""
    applicant = {"name": "CHAN Tai Man", "birth_date": born, "phone": "+85366123456"}
    applicant["documents"] = {"macau_bir": {"number": bir}}  # type: ignore[assignment]
    return Submission(
        source="gz-citizen-centre",
        partner=SPYNE,
        service=SPYNE_SERVICE,
        idempotency_key=key,
        application={"applicant": applicant},
    )


def verification(key: str, uscc: str = VALID_USCC, case: str = "GZ-2026-000321") -> Submission:
    """An application for Guangdong's verifyCertificate."""
    return Submission(
        source="gz-citizen-centre",
        partner=XROAD,
        service=XROAD_SERVICE,
        idempotency_key=key,
        application={"case_number": case, "company": {"uscc": uscc, "name": "穗港通贸易"}},
    )


async def ended(broker: Broker, xid: str) -> Exchange:
    """The exchange once it has ended (fails the test at the deadline)."""
    ex: Exchange = await wait_for(
        lambda: broker.get(xid),
        lambda ex: ex is not None and ex.state in ENDED,
        what=f"exchange {xid} to end",
    )
    return ex


async def resend(url: str, broker: Broker, xid: str) -> Exchange:
    """Resend a delivered exchange through the replay API; the exchange once delivered again."""
    async with aiohttp.ClientSession() as http:
        body = {"mode": "resend", "exchange_id": xid, "reason": "check the partner's books"}
        async with http.post(f"{url}/v1/replays", json=body) as resp:
            assert resp.status == 200, await resp.text()
    ex: Exchange = await wait_for(
        lambda: broker.get(xid),
        lambda ex: ex is not None and ex.state is State.DELIVERED and ex.attempts == 2,
        what="the resent exchange to be delivered again",
    )
    return ex


Run = Callable[..., contextlib.AbstractAsyncContextManager[tuple[Any, Broker, str]]]


@pytest.fixture
def spyne(tmp_path: Path) -> Run:
    """The Macau office on loopback and a broker on its onboarding configuration."""

    @contextlib.asynccontextmanager
    async def run(**kw: Any) -> AsyncIterator[tuple[ServicoPedidosMacau, Broker, str]]:
        with ServicoPedidosMacau(**kw) as servico:
            root = spyne_config(tmp_path / "spyne", servico)
            async with running_broker(
                root=root,
                journal_path=tmp_path / "journal.sqlite",
                port=0,
                endpoints={SPYNE: servico.url},
                poll_interval=0.05,
            ) as (broker, url):
                yield servico, broker, url

    return run


@pytest.fixture
def xroad(tmp_path: Path) -> Run:
    """The X-Road security server stub on loopback and a broker on its onboarding configuration."""

    @contextlib.asynccontextmanager
    async def run(**kw: Any) -> AsyncIterator[tuple[XRoadStub, Broker, str]]:
        root = xroad_config(tmp_path / "xroad")
        with XRoadStub(**kw) as stub:
            async with running_broker(
                root=root,
                journal_path=tmp_path / "journal.sqlite",
                port=0,
                endpoints={XROAD: stub.url},
                poll_interval=0.05,
            ) as (broker, url):
                yield stub, broker, url

    return run


# -- Macau, spyne: the key in a nested header ----------------------------------------------------


async def test_spyne_a_valid_request_is_delivered_once_with_the_key_in_the_nested_header(
    spyne: Run,
) -> None:
    """Accepted at the first call: the office read the key from Cabecalho/ChaveIdempotencia and
    the fixed Remetente; its receipt number is the exchange's receipt."""
    async with spyne() as (servico, broker, _):
        ex, _ = await broker.submit(pedido("mo-valid-1"))
        done = await ended(broker, ex.id)
    log = servico.read_log()
    assert [(e["chave"], e["remetente"], e["resultado"], e["registo"]) for e in log] == [
        (ex.id, "TONGBAN-GZ", "aceite", "novo")  # the key the office sees: the exchange id
    ]
    assert done.state is State.DELIVERED and done.attempts == 1
    assert done.receipt is not None and done.receipt["receipt_number"] == log[0]["recibo"]


async def test_spyne_a_client_fault_is_rejected_with_the_offices_message(spyne: Run) -> None:
    """Client.BIRCancelado (HTTP 500): rejected after one call, with the office's own words."""
    async with spyne() as (servico, broker, _):
        ex, _ = await broker.submit(pedido("mo-cancelled", bir="5123456(7)"))
        done = await ended(broker, ex.id)
    assert [(e["chave"], e["resultado"], e["falha"]) for e in servico.read_log()] == [
        (ex.id, "recusado", "Client.BIRCancelado")
    ]
    assert done.state is State.REJECTED and done.attempts == 1
    error = done.last_error or {}
    assert error["partner_message"] == "O BIR 5123456(7) foi cancelado"
    assert error["partner_code"].endswith("Client.BIRCancelado")


async def test_spyne_a_server_fault_is_retried_with_the_same_key_then_delivered(
    spyne: Run,
) -> None:
    """Server.IndisponivelTemporariamente twice, then accepted: three calls, one key, one record."""
    async with spyne(indisponivel_primeiras=2) as (servico, broker, _):
        ex, _ = await broker.submit(pedido("mo-busy-1"))
        done = await ended(broker, ex.id)
    log = servico.read_log()
    assert [(e["chave"], e["resultado"]) for e in log] == [
        (ex.id, "indisponivel"),
        (ex.id, "indisponivel"),
        (ex.id, "aceite"),
    ]
    assert done.state is State.DELIVERED and done.attempts == 3


async def test_spyne_the_same_key_twice_is_one_request_at_the_office(spyne: Run) -> None:
    """A second submission with the key and a resend of the delivered exchange: the office
    answers its first receipt (repetido) and holds one request."""
    async with spyne() as (servico, broker, url):
        first, _ = await broker.submit(pedido("mo-twice"))
        again, created = await broker.submit(pedido("mo-twice"))
        done = await ended(broker, first.id)
        resent = await resend(url, broker, first.id)
    log = servico.read_log()
    assert (created, again.id) == (False, first.id)
    assert [(e["chave"], e["registo"]) for e in log] == [
        (first.id, "novo"),
        (first.id, "repetido"),
    ]
    assert log[0]["recibo"] == log[1]["recibo"]
    assert done.receipt == resent.receipt


# -- Guangdong, X-Road 4.0 ----------------------------------------------------------------------


async def test_xroad_a_valid_request_carries_the_profiles_headers_and_is_delivered(
    xroad: Run,
) -> None:
    """The security server accepts the headers (client SUBSYSTEM, service SERVICE, id, userId,
    protocolVersion) and xrd:issue from the mapping; requestKey is the idempotency key."""
    async with xroad() as (stub, broker, _):
        ex, _ = await broker.submit(verification("gd-valid-1"))
        done = await ended(broker, ex.id)
    [entry] = stub.read_log()
    assert (entry["client"], entry["service"]) == (CLIENT, SERVICE)
    assert (entry["userId"], entry["issue"]) == ("CN-GZ-TONGBAN", "GZ-2026-000321")
    assert (entry["requestKey"], entry["outcome"], entry["record"]) == (
        ex.id,
        "VALID",
        "new",
    )
    assert done.state is State.DELIVERED and done.attempts == 1
    assert done.receipt == {"receipt_number": entry["verificationNo"], "result": "VALID"}


async def test_xroad_a_business_refusal_in_the_body_is_rejected_by_the_reply_rules(
    xroad: Run,
) -> None:
    """HTTP 200 with fault/faultCode invalid_uscc_format: rejected after one message, with the
    provider's code and message."""
    async with xroad() as (stub, broker, _):
        ex, _ = await broker.submit(verification("gd-bad-uscc", uscc="9144"))
        done = await ended(broker, ex.id)
    assert [(e["outcome"], e["faultCode"]) for e in stub.read_log()] == [
        ("body_fault", "invalid_uscc_format")
    ]
    assert done.state is State.REJECTED and done.attempts == 1
    error = done.last_error or {}
    assert error["partner_code"] == "invalid_uscc_format"
    assert error["partner_message"] == "uscc must be 18 characters of 0-9A-HJ-NPQRTUWXY"


async def test_xroad_an_unknown_service_fault_is_permanent_by_the_profile(xroad: Run) -> None:
    """Server.ServerProxy.UnknownService is a Server fault a retry cannot fix: one message."""
    other = XRoadId("SERVICE", (("xRoadInstance", "CN-GD"), ("serviceCode", "somethingElse")))
    async with xroad(service=other) as (stub, broker, _):
        ex, _ = await broker.submit(verification("gd-unknown"))
        done = await ended(broker, ex.id)
    assert [(e["outcome"], e["faultCode"]) for e in stub.read_log()] == [
        ("soap_fault", "Server.ServerProxy.UnknownService")
    ]
    assert done.state is State.REJECTED and done.attempts == 1


@pytest.mark.parametrize("fault_status", [500, 200])
async def test_xroad_a_network_error_is_retried_as_new_messages_with_the_same_key(
    xroad: Run, fault_status: int
) -> None:
    """Server.ServerProxy.ServiceFailed.NetworkError twice (at HTTP 500 or 200), then VALID: every
    retry is a new message (a new xrd:id, which the stub would refuse if reused) with the same
    requestKey, and the provider records one verification."""
    async with xroad(unavailable_first=2, fault_status=fault_status) as (stub, broker, _):
        ex, _ = await broker.submit(verification("gd-busy-1"))
        done = await ended(broker, ex.id)
    log = stub.read_log()
    assert [(e["outcome"], e["requestKey"]) for e in log] == [
        ("soap_fault", ex.id),
        ("soap_fault", ex.id),
        ("VALID", ex.id),
    ]
    assert len({e["messageId"] for e in log}) == 3
    assert done.state is State.DELIVERED and done.attempts == 3


async def test_xroad_the_same_key_twice_is_one_verification(xroad: Run) -> None:
    """A second submission with the key and a resend: the provider answers the first
    verificationNo (repeat) to a new message id, and holds one verification."""
    async with xroad() as (stub, broker, url):
        first, _ = await broker.submit(verification("gd-twice"))
        again, created = await broker.submit(verification("gd-twice"))
        done = await ended(broker, first.id)
        resent = await resend(url, broker, first.id)
    log = stub.read_log()
    assert (created, again.id) == (False, first.id)
    assert [(e["outcome"], e["record"]) for e in log] == [("VALID", "new"), ("VALID", "repeat")]
    assert log[0]["verificationNo"] == log[1]["verificationNo"]
    assert log[0]["messageId"] != log[1]["messageId"]
    assert done.receipt == resent.receipt


# -- tongban check on the onboarding, and on mistakes an operator makes ---------------------------


def tongban(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The tongban CLI on a configuration directory."""
    return subprocess.run(
        [sys.executable, "-m", "federation", *args, "--config", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_both_onboardings_pass_check_and_their_golden_examples(tmp_path: Path) -> None:
    """`tongban check` and `tongban mapping test --all` accept both YAML-only onboardings."""
    with ServicoPedidosMacau() as servico:
        roots = [spyne_config(tmp_path / "spyne", servico), xroad_config(tmp_path / "xroad")]
    for root in roots:
        check = tongban(root, "check")
        assert check.returncode == 0, check.stdout + check.stderr
        golden = tongban(root, "mapping", "test", "--all")
        assert golden.returncode == 0, golden.stdout + golden.stderr
        assert golden.stdout.strip().splitlines()[-1] == "2 golden examples, 0 failed"


def _edit(file: Path, old: str, new: str) -> None:
    text = file.read_text(encoding="utf-8")
    assert old in text
    file.write_text(text.replace(old, new), encoding="utf-8")


def _line(file: Path, text: str) -> int:
    return next(i for i, line in enumerate(file.read_text().splitlines(), 1) if text in line)


def test_check_names_an_import_missing_from_the_catalogue_and_the_line_to_add(
    tmp_path: Path,
) -> None:
    """Without the catalogue entry for xroad.xsd, check names the URL at the wsdl: line and
    prints the schemas: line that maps it to a file beside the WSDL."""
    root = xroad_config(tmp_path / "xroad")
    partners = root / "partners.yaml"
    _edit(partners, "  http://x-road.eu/xsd/xroad.xsd: partners/xroad/xroad.xsd\n", "")
    check = tongban(root, "check")
    assert check.returncode == 1
    where = f"partners.yaml:{_line(partners, 'wsdl: partners/xroad/verifyCertificate.wsdl')}: "
    assert where + "partners[0].soap.wsdl: the WSDL imports http://x-road.eu/xsd/xroad.xsd" in (
        check.stdout + check.stderr
    )
    assert (
        '  "http://x-road.eu/xsd/xroad.xsd": partners/xroad/xroad.xsd'
        in check.stdout + check.stderr
    )


def test_check_reports_a_required_header_left_unfilled_at_its_line(tmp_path: Path) -> None:
    """Without idempotency: and headers:, nothing fills the header part Cabecalho: check says
    so at the service item's line in partners.yaml."""
    with ServicoPedidosMacau() as servico:
        root = spyne_config(tmp_path / "spyne", servico)
    partners = root / "partners.yaml"
    text = partners.read_text(encoding="utf-8")
    start, end = text.index("      idempotency:\n"), text.index("    reply:\n")
    partners.write_text(text[:start] + text[end:], encoding="utf-8")
    check = tongban(root, "check")
    out = check.stdout + check.stderr
    line = _line(partners, "DSI-PEDIDO-RESIDENCIA:")
    assert check.returncode == 1
    assert f"partners.yaml:{line}: " in out
    assert "requires the SOAP header 'Cabecalho', which nothing fills" in out


def test_check_refuses_the_key_as_the_text_of_a_header_that_holds_elements(
    tmp_path: Path,
) -> None:
    """The original mistake, idempotency_header naming Cabecalho itself, is an error at its line
    that names the path of the element inside."""
    with ServicoPedidosMacau() as servico:
        root = spyne_config(tmp_path / "spyne", servico)
    partners = root / "partners.yaml"
    _edit(
        partners,
        '      idempotency:\n        header: "{urn:mo:gov:dsi:pedidos:2026}Cabecalho/ChaveIdempotencia"\n',
        '      idempotency_header: "{urn:mo:gov:dsi:pedidos:2026}Cabecalho"\n',
    )
    check = tongban(root, "check")
    out = check.stdout + check.stderr
    assert check.returncode == 1
    assert f"partners.yaml:{_line(partners, 'idempotency_header:')}: " in out
    assert (
        'idempotency: {header: "{urn:mo:gov:dsi:pedidos:2026}Cabecalho/ChaveIdempotencia"}' in out
    )


def test_check_reports_a_header_path_the_wsdl_does_not_declare(tmp_path: Path) -> None:
    """A misspelt fixed header (Remitente) is an error at its line naming what Cabecalho has."""
    with ServicoPedidosMacau() as servico:
        root = spyne_config(tmp_path / "spyne", servico)
    partners = root / "partners.yaml"
    _edit(partners, "Cabecalho/Remetente", "Cabecalho/Remitente")
    check = tongban(root, "check")
    out = check.stdout + check.stderr
    assert check.returncode == 1
    assert f"partners.yaml:{_line(partners, 'Remitente')}: " in out
    assert "Cabecalho has no 'Remitente'; it has: ChaveIdempotencia, Remetente" in out
