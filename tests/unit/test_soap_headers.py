"""SOAP headers: paths, the mapping's headers: section, filling one message, the X-Road faults.

The header parts are those of the published X-Road WSDL (tests/foreign/xroad/), loaded through its
schema catalogue; no socket is opened.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from adapters.base import OutboundRequest
from adapters.body import BodyInvalid, Prefixes
from adapters.headerplan import HeaderSettings, plan_for
from adapters.replies import fault_is_transient
from adapters.soapheaders import (
    HeaderParts,
    HeaderPathError,
    compile_headers,
    parse_steps,
    resolve,
    tree,
)
from adapters.wsdl import find_port, load_document
from adapters.xroad import OPTIONAL_PARTS, XRoadProfile, XRoadService, with_fault_rules
from federation.config.secrets import SecretError, SecretRef
from federation.domain.errors import ConfigError
from federation.mapping import load_mapping
from tests.foreign.xroad_stub import CATALOGUE, WSDL_PATH

XRD = "http://x-road.eu/xsd/xroad.xsd"
ID = "http://x-road.eu/xsd/identifiers"
PROFILE = XRoadProfile(
    client={"instance": "CN-GD", "member_class": "GOV", "member_code": "1144", "subsystem": "tb"},
    service={"instance": "CN-GD", "member_class": "GOV", "member_code": "1100"},
    user_id="CN-USER",
)


@pytest.fixture(scope="module")
def parts() -> HeaderParts:
    """verifyCertificate's header parts, compiled."""
    port = find_port(
        load_document(WSDL_PATH, WSDL_PATH.parent, tuple(CATALOGUE.items())), None, None
    )
    message = port.binding.get("verifyCertificate").input
    return compile_headers(message, Prefixes())


def request(attempt: int = 1, **payload: Any) -> OutboundRequest:
    """One attempt of exchange ex-1 with key k-1."""
    return OutboundRequest(
        exchange_id="ex-1",
        idempotency_key="k-1",
        service="S",
        payload=payload,
        attempt=attempt,
    )


def parsed(blocks: list[str]) -> etree._Element:
    """The header blocks inside a Header element declaring the prefixes they use."""
    decls = (
        'xmlns:ns0="http://x-road.eu/xsd/xroad.xsd" xmlns:ns1="http://x-road.eu/xsd/identifiers"'
    )
    return etree.fromstring(f"<h {decls}>{''.join(blocks)}</h>")


def test_a_path_step_may_carry_a_namespace_with_slashes() -> None:
    """Clark namespaces are URLs: their slashes do not split the path; @name ends it."""
    assert parse_steps(f"{{{XRD}}}client/@objectType") == [(XRD, "client"), (None, "@objectType")]
    with pytest.raises(HeaderPathError, match="only be the last step"):
        parse_steps("client/@objectType/memberCode")


def test_paths_resolve_by_clark_name_or_local_name_and_misses_name_what_exists(
    parts: HeaderParts,
) -> None:
    """A header path resolves against the parts; a wrong step names what the element has."""
    assert resolve(parts, f"{{{XRD}}}service/{{{ID}}}serviceCode") == ("service", "serviceCode")
    assert resolve(parts, "client/@objectType") == ("client", "@objectType")
    with pytest.raises(HeaderPathError, match="no header part 'Cabecalho'"):
        resolve(parts, "Cabecalho/ChaveIdempotencia")
    with pytest.raises(HeaderPathError, match="client has no 'serviceCode'; it has: xRoadInstance"):
        resolve(parts, "client/serviceCode")


def test_every_declared_part_is_required_unless_the_profile_says_optional(
    parts: HeaderParts,
) -> None:
    """userId and issue are required by the WSDL alone, optional under the X-Road profile."""
    _, plain = tree(parts)
    paths, profiled = tree(parts, OPTIONAL_PARTS)
    assert {"userId", "issue"} <= plain and not {"userId", "issue"} & profiled
    assert {"client", "client.memberCode", "service.serviceCode", "id"} <= profiled
    assert "client.subsystemCode" in paths and "client.subsystemCode" not in profiled


def test_the_profile_fills_identifiers_and_a_new_message_id_per_attempt(parts: HeaderParts) -> None:
    """Two attempts: the same client and service, SUBSYSTEM and SERVICE object types, version 4.0,
    userId; a different xrd:id each time."""
    plan = plan_for(
        HeaderSettings(profile=PROFILE, key_body="requestKey"),
        parts,
        operation="verifyCertificate",
        body_paths={"uscc", "requestKey"},
        item=XRoadService(version="v1"),
    )
    ids = []
    for attempt in (1, 2):
        body, blocks = plan.fill(request(attempt, uscc="X"), {"uscc": "X"})
        header = parsed(blocks)
        assert body == {"uscc": "X", "requestKey": "k-1"}
        assert header.find(f"{{{XRD}}}client").get(f"{{{ID}}}objectType") == "SUBSYSTEM"
        service = header.find(f"{{{XRD}}}service")
        assert service.get(f"{{{ID}}}objectType") == "SERVICE"
        codes = [(etree.QName(c).localname, c.text) for c in service]
        assert codes[-2:] == [("serviceCode", "verifyCertificate"), ("serviceVersion", "v1")]
        assert header.findtext(f"{{{XRD}}}protocolVersion") == "4.0"
        assert header.findtext(f"{{{XRD}}}userId") == "CN-USER"
        ids.append(header.findtext(f"{{{XRD}}}id"))
    assert ids[0] != ids[1] and all(ids)


def test_mapped_and_exchange_values_are_filled_and_escaped(parts: HeaderParts) -> None:
    """@headers values go through the escaping writer; @exchange names become this attempt's
    values; the payload the journal holds is not changed."""
    plan = plan_for(
        HeaderSettings(profile=PROFILE), parts, operation="verifyCertificate", body_paths=set()
    )
    payload = {
        "uscc": "X",
        "@headers": {"issue": 'case <1> & "2"'},
        "@exchange": {"userId": "idempotency_key"},
    }
    body, blocks = plan.fill(request(3), payload)
    header = parsed(blocks)
    assert header.findtext(f"{{{XRD}}}issue") == 'case <1> & "2"'
    assert header.findtext(f"{{{XRD}}}userId") == "k-1"
    assert body == {"uscc": "X"} and "@headers" in payload


def test_a_header_value_xml_cannot_carry_or_an_unknown_part_is_refused(parts: HeaderParts) -> None:
    """A control character, or a part the WSDL lacks, fails before anything is sent, by path."""
    plan = plan_for(
        HeaderSettings(profile=PROFILE), parts, operation="verifyCertificate", body_paths=set()
    )
    with pytest.raises(BodyInvalid) as bad:
        plan.fill(request(), {"@headers": {"issue": "a\x00b", "Cabecalho": {"x": "y"}}})
    assert bad.value.problems == [
        "Cabecalho: no such header part in the WSDL",
        "issue: contains U+0000, which XML cannot carry",
    ]


def test_a_header_value_given_by_reference_is_read_for_every_message(
    parts: HeaderParts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A soap: headers: reference is read at each fill: unset, SecretError naming it; set, its
    value; changed, the new value; nothing is read when the plan is made."""
    ref = SecretRef(kind="env", name="TB_TEST_HEADER_SECRET")
    monkeypatch.delenv(ref.name, raising=False)
    settings = HeaderSettings(profile=PROFILE, fixed=((f"{{{XRD}}}userId", ref),))
    plan = plan_for(settings, parts, operation="verifyCertificate", body_paths=set())
    with pytest.raises(SecretError, match=r"secret \{env:TB_TEST_HEADER_SECRET\}: environment"):
        plan.fill(request(), {"uscc": "X"})
    for value in ("first-secret-9a2c", "rotated-secret-51fe"):
        monkeypatch.setenv(ref.name, value)
        assert parsed(plan.fill(request(), {"uscc": "X"})[1]).findtext(f"{{{XRD}}}userId") == value


def test_a_referenced_value_its_type_refuses_is_named_by_reference_not_quoted(
    parts: HeaderParts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret where its type wants something else fails before sending; the problem names the
    path and the reference, never the value (the writer's own message quotes it)."""
    monkeypatch.setenv("TB_TEST_HEADER_SECRET", "Leaky-Secret-77")
    ref = SecretRef(kind="env", name="TB_TEST_HEADER_SECRET")
    settings = HeaderSettings(profile=PROFILE, fixed=(("client", ref),))
    plan = plan_for(settings, parts, operation="verifyCertificate", body_paths=set())
    with pytest.raises(BodyInvalid) as bad:
        plan.fill(request(), {"uscc": "X"})
    assert bad.value.problems == [
        "client: the value of {env:TB_TEST_HEADER_SECRET} is not one its type allows"
    ]


def test_the_profile_needs_the_xroad_header_parts() -> None:
    """An operation without xrd:client and friends cannot take the X-Road profile."""
    with pytest.raises(HeaderPathError, match="declares no xrd:client header part"):
        plan_for(
            HeaderSettings(profile=PROFILE),
            HeaderParts(parts={}, tags={}),
            operation="op",
            body_paths=set(),
        )


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        ("Server.ServerProxy.ServiceFailed.NetworkError", True),
        ("server.serverproxy.service_failed.network_error", True),
        ("SOAP-ENV:Server.ClientProxy.NetworkError", True),
        ("Client.InvalidRequest", False),
        ("client.missing_header_field", False),
        ("Server.ServerProxy.UnknownService", False),
        ("server.serverproxy.access_denied", False),
    ],
)
def test_xroad_fault_codes_are_read_without_case(code: str, transient: bool) -> None:
    """The profile's fault rules: Client permanent; Server transient unless no retry can help."""
    assert fault_is_transient(with_fault_rules(None), code, ()) is transient


def _mapping(tmp_path: Path, headers: str) -> Path:
    file = tmp_path / "m.yaml"
    text = "mapping: 1\nrequest:\n  uscc: company.uscc\nheaders:\n" + textwrap.indent(
        textwrap.dedent(headers), "  "
    )
    file.write_text(text, encoding="utf-8")
    return file


def test_a_headers_section_writes_under_reserved_keys(tmp_path: Path) -> None:
    """Application values and constants under @headers, exchange reads as names under @exchange;
    the request section's own fields (the body) are unchanged."""
    mapping = load_mapping(
        _mapping(
            tmp_path,
            """\
            issue: {from: case_number, required: true}
            Cabecalho.Remetente: {value: TONGBAN}
            Cabecalho.Tentativa: {from: exchange.attempt}
            """,
        )
    )
    out = mapping.map_request({"case_number": "C-1", "company": {"uscc": "U"}})
    assert out == {
        "uscc": "U",
        "@headers": {"issue": "C-1", "Cabecalho": {"Remetente": "TONGBAN"}},
        "@exchange": {"Cabecalho.Tentativa": "attempt"},
    }
    assert mapping.headers is not None
    assert [s.target for s in mapping.request.specs] == [("uscc",)]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("{from: exchange.colour}", "no exchange value 'exchange.colour'; there are: exchange.id"),
        (
            "{from: exchange.attempt_time, transform: upper}",
            "exchange.attempt_time is known only when each message is sent",
        ),
        ('{format: "{exchange.id}-x"}', "exchange.id is known only when each message is sent"),
    ],
)
def test_exchange_values_are_read_with_from_alone(tmp_path: Path, field: str, message: str) -> None:
    """An unknown exchange value, or one transformed or formatted, is an error at its line."""
    with pytest.raises(ConfigError) as bad:
        load_mapping(_mapping(tmp_path, f"sentAt: {field}\n"), display="m.yaml")
    [problem] = bad.value.problems
    assert str(problem).startswith("m.yaml:5: headers.sentAt: ")
    assert message in str(problem)
