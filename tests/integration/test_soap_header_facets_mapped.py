"""SOAP header values that come from the application or a profile, against the facets the partner's
WSDL gives their elements, with the partners' own services on loopback.

* Macau's spyne office: the mapping fills ``Cabecalho.Remetente`` (maxLength 100 in the WSDL spyne
  publishes) from the application. A value over the limit is refused before sending (rejected,
  ``reason=contract``), the journal's error naming the element and the facet, never the value, and
  the office's log never sees the request; before, it was sent, and the office (whose spyne does not
  enforce the length it publishes) recorded it.
* Guangdong's X-Road security server stub, with a deployment's copy of xroad.xsd that gives
  ``xrd:issue`` the province's case-number pattern (the published schema leaves it xs:string, and
  its imports are read through the schema catalogue): a case number off the pattern, from the
  mapping's ``headers:``, is refused the same way. And with an identifiers.xsd that restricts
  ``memberCode`` to a Unified Social Credit Code, `tongban check` refuses the profile's client
  member code at its partners.yaml line, in each language.

Each journal behaviour on SQLite, PostgreSQL and the in-memory journal.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from federation.api.server import running_broker
from federation.domain.models import Exchange, State
from federation.runtime.broker import Broker, Submission
from tests.foreign.spyne_nested_header import ServicoPedidosMacau
from tests.foreign.test_onboarding_soap import (
    SPYNE,
    SPYNE_SERVICE,
    XROAD,
    _edit,
    _line,
    ended,
    spyne_config,
    verification,
    xroad_config,
)
from tests.foreign.xroad_stub import XRoadStub
from tests.unit.test_cli_contract_languages import run

pytestmark = [
    pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning"),
]

REMETENTE = re.compile(
    r'      headers:\n        "\{urn:mo:gov:dsi:pedidos:2026\}Cabecalho/Remetente".*\n'
)
MAPPING = "mappings/mo-dsi/submeter-pedido.yaml"
XROAD_FILES = "partners/xroad"
CASE_PATTERN = "GZ-[0-9]{4}-[0-9]{6}"
USCC_PATTERN = "[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}"


def remetente_from_the_application(root: Path) -> Path:
    """The Macau onboarding with Remetente taken from the application (the window's reference)
    by the mapping's headers:, instead of fixed in partners.yaml."""
    partners = root / "partners.yaml"
    text, removed = REMETENTE.subn("", partners.read_text(encoding="utf-8"))
    assert removed == 1
    partners.write_text(text, encoding="utf-8")
    mapping = root / MAPPING
    text = mapping.read_text(encoding="utf-8") + (
        "headers:\n  Cabecalho.Remetente: {from: local_reference, required: true}\n"
    )
    mapping.write_text(text, encoding="utf-8")
    return root


def pedido(key: str, reference: str) -> Submission:
    """An application for the Macau office, filed under the window's ``reference``."""
    applicant: dict[str, Any] = {"name": "CHAN Tai Man", "birth_date": "1985-03-02"}
    applicant["documents"] = {"macau_bir": {"number": "1234567(8)"}}
    return Submission(
        source="gz-citizen-centre",
        partner=SPYNE,
        service=SPYNE_SERVICE,
        idempotency_key=key,
        application={"applicant": applicant, "local_reference": reference},
    )


def restrict(root: Path, schema: str, element: str, pattern: str) -> None:
    """The deployment's copy of an X-Road schema, ``element`` given a pattern."""
    plain = f'<xs:element name="{element}" type="xs:string"'
    restricted = (
        f'<xs:element name="{element}"><xs:simpleType><xs:restriction base="xs:string">'
        f'<xs:pattern value="{pattern}"/></xs:restriction></xs:simpleType></xs:element'
    )
    file = root / XROAD_FILES / schema
    text = file.read_text(encoding="utf-8")
    found = re.search(
        re.escape(plain) + r"\s*/>|" + re.escape(plain) + r">.*?</xs:element>", text, re.S
    )
    assert found is not None, element
    file.write_text(
        text[: found.start()] + restricted + ">" + text[found.end() :], encoding="utf-8"
    )


@contextlib.asynccontextmanager
async def broker_on(
    root: Path, partner: str, url: str, journal: Any
) -> AsyncIterator[tuple[Broker, str]]:
    async with running_broker(
        root=root,
        journal_path=root / "journal.sqlite",
        port=0,
        endpoints={partner: url},
        poll_interval=0.05,
        journal=journal,
    ) as both:
        yield both


async def breaker_of(url: str, partner: str) -> tuple[int, int]:
    """The partner's circuit breaker: consecutive failures, times opened."""
    async with aiohttp.ClientSession(url) as http, http.get("/v1/partners") as r:
        found = {p["id"]: p for p in (await r.json())["partners"]}[partner]["breaker"]
    return found["consecutive_failures"], found["times_opened"]


def refused_before_sending(
    done: Exchange, logs: Sequence[Mapping[str, Any]], path: str, facet: str
) -> str:
    """The exchange rejected as the request's fault, its error naming the header element and the
    facet; the error's message."""
    assert done.state is State.REJECTED and done.attempts <= 1, done
    error = done.last_error or {}
    message = str(error.get("message"))
    assert f"{path} (SOAP header): the value breaks the WSDL's XML Schema facet {facet}" in message
    rejected = [e for e in logs if e["event"] == "exchange_rejected"]
    assert [e["reason"] for e in rejected] == ["contract"], rejected
    return message


def attempts(done: Exchange) -> list[Any]:
    """The events after the mapping (which holds the application's values, as it must)."""
    kinds = [e.kind for e in done.events]
    assert "mapped" in kinds and len(kinds) > kinds.index("mapped") + 1, kinds
    return [e.data for e in done.events[kinds.index("mapped") + 1 :]]


async def test_a_mapped_header_value_over_its_max_length_is_refused_before_the_office_sees_it(
    tmp_path: Path, journal_of: Any
) -> None:
    """A 101-character window reference for Remetente (maxLength 100): rejected on our side, the
    error naming Cabecalho.Remetente and maxLength, not the reference; the office logs nothing.
    A 100-character one is delivered with it."""
    too_long, fits = "GZW-" + "7" * 97, "GZW-" + "8" * 96
    with ServicoPedidosMacau() as servico:
        root = remetente_from_the_application(spyne_config(tmp_path / "spyne", servico))
        async with broker_on(root, SPYNE, servico.url, journal_of) as (broker, url):
            with capture_logs() as logs:
                ex, _ = await broker.submit(pedido("mo-remetente-long", too_long))
                refused = await ended(broker, ex.id)
            assert servico.read_log() == []
            assert await breaker_of(url, SPYNE) == (0, 0)  # the partner was not asked
            good, _ = await broker.submit(pedido("mo-remetente-fits", fits))
            delivered = await ended(broker, good.id)
        log = servico.read_log()
    message = refused_before_sending(refused, logs, "Cabecalho.Remetente", "maxLength")
    assert "7" * 20 not in message and "7" * 20 not in str(attempts(refused))
    assert delivered.state is State.DELIVERED, delivered.last_error
    assert [(e["remetente"], e["resultado"]) for e in log] == [(fits, "aceite")]


async def test_an_xroad_issue_off_the_deployments_pattern_is_refused_before_the_security_server(
    tmp_path: Path, journal_of: Any
) -> None:
    """xrd:issue from the mapping (the case number) against the pattern the deployment's copy of
    xroad.xsd gives it, read through the schema catalogue: a case number off the pattern is
    rejected on our side, the security server logs nothing; one on it is delivered."""
    root = xroad_config(tmp_path / "xroad")
    restrict(root, "xroad.xsd", "issue", CASE_PATTERN)
    with XRoadStub() as stub:
        async with broker_on(root, XROAD, stub.url, journal_of) as (broker, url):
            with capture_logs() as logs:
                ex, _ = await broker.submit(verification("gd-issue-off", case="GZ-26-321 张三"))
                refused = await ended(broker, ex.id)
            assert stub.read_log() == []
            assert await breaker_of(url, XROAD) == (0, 0)
            good, _ = await broker.submit(verification("gd-issue-on"))
            delivered = await ended(broker, good.id)
        log = stub.read_log()
    message = refused_before_sending(refused, logs, "issue", "pattern")
    assert "张三" not in message and "张三" not in str(attempts(refused))
    assert delivered.state is State.DELIVERED, delivered.last_error
    assert [entry["issue"] for entry in log] == ["GZ-2026-000321"]


def test_check_refuses_an_xroad_member_code_off_the_schema_at_its_line_in_each_language(
    tmp_path: Path,
) -> None:
    """The client's member_code in partners.yaml against an identifiers.xsd that restricts
    memberCode to a Unified Social Credit Code: `tongban check` names the setting's line, the
    header element and the facet, in the reader's language; a code that fits passes."""
    root = xroad_config(tmp_path / "xroad")
    restrict(root, "identifiers.xsd", "memberCode", USCC_PATTERN)
    partners = root / "partners.yaml"
    _edit(partners, "member_code: 11440100MB2C00017K", "member_code: 11440100-MB2C0001")
    where = f"partners.yaml:{_line(partners, '11440100-MB2C0001')}: "
    setting = "partners[0].soap.xroad.client.member_code: "
    said = {
        "en": "profile xroad: the value breaks the WSDL's XML Schema facet pattern of header "
        "client.memberCode",
        "zh-Hans": "profile xroad：该值违反 WSDL 的 XML Schema 对标头 client.memberCode 规定的约束 "
        "pattern",
        "zh-Hant": "profile xroad：該值違反 WSDL 的 XML Schema 對標頭 client.memberCode 規定的約束 "
        "pattern",
    }
    for language, result in run(root, "check").items():
        assert result.exit_code == 1, result.output
        assert f"{where}{setting}{said[language]}\n" in result.stderr, result.stderr
        assert "11440100-MB2C0001" not in result.stderr.split(setting, 1)[1].splitlines()[0]
    _edit(partners, "member_code: 11440100-MB2C0001", "member_code: 11440100MB2C00017K")
    assert all(r.exit_code == 0 for r in run(root, "check").values())
